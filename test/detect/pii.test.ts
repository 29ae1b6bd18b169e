import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { entities, valuesOf } from './helpers.js';

describe('email', () => {
  it('finds addresses whose domain has a public suffix', () => {
    assert.deepEqual(valuesOf('Write to ana+ml@startup.ai, or j.doe@mail.co.uk.', 'EMAIL'), ['ana+ml@startup.ai', 'j.doe@mail.co.uk']);
    assert.deepEqual(valuesOf('mailto:ops@example.org', 'EMAIL'), ['ops@example.org']);
  });
  it('ignores decorators, unknown suffixes and URL credentials', () => {
    assert.deepEqual(valuesOf('@property def x(self): return user@localhost or a@b.invalidtld', 'EMAIL'), []);
    assert.deepEqual(valuesOf('git clone https://token123@github.com/acme/app.git', 'EMAIL'), []);
    assert.deepEqual(valuesOf('postgres://admin:pw@db.example.com/app', 'EMAIL'), []);
  });
  it('leaves out the quote that opens a string literal', () => {
    assert.deepEqual(valuesOf("tldts.parse('tldts@emailprovider.co.uk')", 'EMAIL'), ['tldts@emailprovider.co.uk']);
  });
  it('stops at the sentence and rejects dots at the edges', () => {
    assert.deepEqual(valuesOf('Mail bob@example.com.', 'EMAIL'), ['bob@example.com']);
    assert.deepEqual(valuesOf('x a..b@example.com', 'EMAIL'), []);
  });
});

describe('phone', () => {
  it('finds international and North American numbers', () => {
    assert.deepEqual(valuesOf('Call +44 20 7946 0958 or +33 6 38 29 47 88.', 'PHONE'), ['+44 20 7946 0958', '+33 6 38 29 47 88']);
    assert.deepEqual(valuesOf('Office: (415) 555-0132', 'PHONE'), ['(415) 555-0132']);
    assert.deepEqual(valuesOf('phone 415-555-0132', 'PHONE'), ['415-555-0132']);
    assert.deepEqual(valuesOf('Toll-free: 1-800-555-0199', 'PHONE'), ['1-800-555-0199']);
  });
  it('needs a phone word for national numbers with a trunk prefix', () => {
    assert.deepEqual(valuesOf('Ring me on 020 7946 0958 today', 'PHONE'), ['020 7946 0958']);
    assert.deepEqual(valuesOf('Batch 020 7946 0958 shipped', 'PHONE'), []);
  });
  it('does not read card numbers, SSNs or versions as phones', () => {
    assert.deepEqual(valuesOf('Commit 4906 0443 1982 9657 and build 217-00-0459, v1.2.3', 'PHONE'), []);
    assert.deepEqual(valuesOf('+1 12', 'PHONE'), []);
  });
});

describe('credit card', () => {
  it('accepts Luhn-valid numbers with known issuer prefixes and card groupings', () => {
    const text = 'Visa 4945 8073 0215 7365, MC 5181-9303-6426-2129, 2-series 2221997220033225, Amex 3745 383236 40562, Diners 36405608656905.';
    assert.deepEqual(valuesOf(text, 'CREDIT_CARD'), ['4945 8073 0215 7365', '5181-9303-6426-2129', '2221997220033225', '3745 383236 40562', '36405608656905']);
  });
  it('rejects a Luhn-invalid number', () => {
    assert.deepEqual(valuesOf('card 4111 1111 1111 1112', 'CREDIT_CARD'), []);
  });
  it('rejects a Luhn-valid number without a known issuer prefix', () => {
    assert.deepEqual(valuesOf('ref 9971 9540 6135 8952', 'CREDIT_CARD'), []);
  });
  it('rejects odd groupings and IBAN tails; mixed separators in card groups are a card', () => {
    assert.deepEqual(valuesOf('x 49458 0730 2157 365 y', 'CREDIT_CARD'), []);
    assert.deepEqual(valuesOf('x 4945-8073 0215-7365 y', 'CREDIT_CARD'), ['4945-8073 0215-7365']);
    assert.deepEqual(valuesOf('Ticket id DE44 5802 0530 9011 8572 07 closed', 'CREDIT_CARD'), []);
  });
  it('drops a trailing group that belongs to the next number', () => {
    assert.deepEqual(valuesOf('card 4945 8073 0215 7365 123 on file', 'CREDIT_CARD'), ['4945 8073 0215 7365']);
  });
  it('raises confidence with card words', () => {
    const [plain] = entities('ref 4945807302157365');
    const spans = valuesOf('credit card 4945807302157365', 'CREDIT_CARD');
    assert.deepEqual(plain, ['CREDIT_CARD', '4945807302157365']);
    assert.equal(spans.length, 1);
  });
});

describe('US SSN', () => {
  it('accepts valid area, group and serial', () => {
    assert.deepEqual(valuesOf('SSN 123-45-6788 on file; applicant 536-22-1234', 'US_SSN'), ['123-45-6788', '536-22-1234']);
  });
  it('rejects area 000, 666 and 9xx, group 00 and serial 0000', () => {
    for (const bad of ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000']) {
      assert.deepEqual(valuesOf(`SSN ${bad}`, 'US_SSN'), [], bad);
    }
  });
  it('rejects well-known public numbers', () => {
    assert.deepEqual(valuesOf('SSN 078-05-1120 (the Woolworth card)', 'US_SSN'), []);
  });
  it('needs an SSN word for nine bare digits or space separators', () => {
    assert.deepEqual(valuesOf('order 123456788 shipped; 123 45 6788 too', 'US_SSN'), []);
    assert.deepEqual(valuesOf('social security number 123456788', 'US_SSN'), ['123456788']);
    assert.deepEqual(valuesOf('SSN: 123 45 6788', 'US_SSN'), ['123 45 6788']);
  });
});

describe('IBAN', () => {
  it('accepts mod-97 valid IBANs, spaced or compact', () => {
    const text = 'Pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432 or NL91 ABNA 0417 1643 00 or FR14 2004 1010 0505 0001 3M02 606.';
    assert.deepEqual(valuesOf(text, 'IBAN'), ['DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432', 'NL91 ABNA 0417 1643 00', 'FR14 2004 1010 0505 0001 3M02 606']);
  });
  it('rejects bad check digits, wrong lengths and unknown countries', () => {
    assert.deepEqual(valuesOf('DE88 3704 0044 0532 0130 00', 'IBAN'), []);
    assert.deepEqual(valuesOf('DE89 3704 0044 0532 0130 0', 'IBAN'), []);
    assert.deepEqual(valuesOf('ZZ89 3704 0044 0532 0130 00', 'IBAN'), []);
  });
  it('stops at the registered length', () => {
    assert.deepEqual(valuesOf('IBAN NL91 ABNA 0417 1643 00 SEPA', 'IBAN'), ['NL91 ABNA 0417 1643 00']);
  });
});

describe('IP address', () => {
  it('finds IPv4 and IPv6, compressed or with an IPv4 tail', () => {
    const text = 'from 192.168.10.1 and 2001:db8:85a3::8a2e:370:7334, fe80::1, ::ffff:10.0.0.1 and 7797:ebfc:40f6:1159:b26c:a740:4f86:e68e.';
    assert.deepEqual(valuesOf(text, 'IP_ADDRESS'), ['192.168.10.1', '2001:db8:85a3::8a2e:370:7334', 'fe80::1', '::ffff:10.0.0.1', '7797:ebfc:40f6:1159:b26c:a740:4f86:e68e']);
  });
  it('rejects out-of-range octets, versions, times and MAC addresses', () => {
    assert.deepEqual(valuesOf('256.1.1.1 v1.2.3.4 version 10.0.0.1 1.2.3.4.5 at 14:05:59 mac 00:1A:2B:3C:4D:5E std::cout', 'IP_ADDRESS'), []);
    assert.deepEqual(valuesOf('see RFC 2616 section 8.1.2.2, rfc2616#section-8.1.2.2 and SAML Profiles §4.1.4.2', 'IP_ADDRESS'), []);
  });
});

describe('date of birth', () => {
  it('reports real dates next to birth words', () => {
    assert.deepEqual(valuesOf('Patient born on 12 March 1985 in Leeds.', 'DATE_OF_BIRTH'), ['12 March 1985']);
    assert.deepEqual(valuesOf('DOB: 1985-03-12', 'DATE_OF_BIRTH'), ['1985-03-12']);
    assert.deepEqual(valuesOf('Date of birth 03/12/85', 'DATE_OF_BIRTH'), ['03/12/85']);
    assert.deepEqual(valuesOf('Birthday: July 4th, 1990', 'DATE_OF_BIRTH'), ['July 4th, 1990']);
  });
  it('ignores dates without birth context and impossible dates', () => {
    assert.deepEqual(valuesOf('The release shipped on 12 March 1985.', 'DATE_OF_BIRTH'), []);
    assert.deepEqual(valuesOf('born on 1985-02-30', 'DATE_OF_BIRTH'), []);
  });
});

describe('passport and national ids', () => {
  const td3 = 'P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10';
  it('reports a passport machine-readable zone with valid check digits', () => {
    assert.deepEqual(valuesOf(`Scan:\n${td3}\nthanks`, 'PASSPORT'), [td3]);
  });
  it('rejects a zone with a wrong check digit', () => {
    assert.deepEqual(valuesOf(td3.replace('L898902C36', 'L898902C37'), 'PASSPORT'), []);
  });
  it('reports an identity-card zone (TD1)', () => {
    const td1 = 'I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<';
    assert.deepEqual(valuesOf(td1, 'NATIONAL_ID'), [td1]);
  });
  it('accepts national ids whose checksum holds', () => {
    const text = [
      'DNI 12345678Z', 'codice fiscale RSSMRA85T10A562S', 'NIR 1 84 12 76 451 089 46', 'ID 11010519491231002X',
      'HETU 131052-308T', 'CPF 529.982.247-25', 'personnummer 811218-9876', 'BSN 111222333', 'NHS number 943 476 5919',
      'SIN 130 692 544', 'Aadhaar 2341 2341 2346',
    ].join('; ');
    assert.deepEqual(valuesOf(text, 'NATIONAL_ID'), [
      '12345678Z', 'RSSMRA85T10A562S', '1 84 12 76 451 089 46', '11010519491231002X', '131052-308T', '529.982.247-25',
      '811218-9876', '111222333', '943 476 5919', '130 692 544', '2341 2341 2346',
    ]);
  });
  it('rejects wrong check characters', () => {
    const text = 'DNI 12345678A; RSSMRA85T10A562T; 11010519491231002Y; 131052-308U; CPF 529.982.247-26; BSN 111222334; NHS 943 476 5918';
    assert.deepEqual(valuesOf(text, 'NATIONAL_ID'), []);
  });
  it('needs the id name for bare digit runs', () => {
    assert.deepEqual(valuesOf('order 111222333 and 943 476 5919', 'NATIONAL_ID'), []);
  });
});
