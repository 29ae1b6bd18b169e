// A SAML 2.0 identity provider for tests, in-process: it reads the
// gateway's real AuthnRequest (HTTP-Redirect binding) and answers with real
// XML signed by xml-crypto (RSA-SHA256, exclusive C14N, enveloped), the way
// Okta, Entra ID or Keycloak do. Every field an attack needs to bend can be
// bent: signing, audience, recipient, times, issuer, InResponseTo.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';

export interface AuthnRequest {
  id: string;
  acsUrl: string;
  issuer: string;
  relayState: string;
}

export interface SamlUser {
  nameId: string;
  email?: string;
  name?: string;
  groups?: string[];
  /** Extra attributes, name → values. */
  attributes?: Record<string, string[]>;
}

export interface ResponseOptions {
  /** What carries the signature; 'none' is an unsigned response. */
  sign?: 'assertion' | 'response' | 'both' | 'none';
  audience?: string;
  recipient?: string;
  issuer?: string;
  /** Where the assertion stops being valid; default five minutes from now. */
  notOnOrAfter?: Date;
  notBefore?: Date;
  issueInstant?: Date;
  /** The Response's InResponseTo; default the request's ID. */
  inResponseTo?: string | null;
  /** Whether SubjectConfirmationData repeats InResponseTo (some IdPs leave it out). */
  confirmInResponseTo?: boolean;
  groupsAttribute?: string;
  /** Sign with another key than the one the gateway trusts. */
  signingKey?: string;
}

const SIGNATURE_ALGORITHM = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const DIGEST_ALGORITHM = 'http://www.w3.org/2001/04/xmlenc#sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

export function newSigningKey(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export class TestSamlIdp {
  readonly entityId = 'https://idp.test.example/saml/metadata';
  readonly ssoUrl = 'https://idp.test.example/saml/sso';
  private readonly key = newSigningKey();

  /** What the gateway is configured to trust (a PEM public key; an X.509 certificate works the same). */
  get certificate(): string {
    return this.key.publicKey;
  }

  /** Reads the AuthnRequest the gateway redirected the browser with. */
  parseRequest(redirect: string | URL): AuthnRequest {
    const url = new URL(redirect);
    if (`${url.origin}${url.pathname}` !== this.ssoUrl) throw new Error(`not a redirect to the IdP: ${url.href}`);
    const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
    const attribute = (name: string) => new RegExp(`\\b${name}="([^"]+)"`).exec(xml)?.[1];
    const issuer = /<(?:saml2?:)?Issuer[^>]*>([^<]+)</.exec(xml)?.[1];
    const id = attribute('ID');
    const acsUrl = attribute('AssertionConsumerServiceURL');
    if (!id || !acsUrl || !issuer) throw new Error(`incomplete AuthnRequest: ${xml}`);
    return { id, acsUrl, issuer, relayState: url.searchParams.get('RelayState') ?? '' };
  }

  /** A base64 SAMLResponse for the request, as the IdP would POST it to the ACS. */
  respond(request: AuthnRequest, user: SamlUser, options: ResponseOptions = {}): string {
    return Buffer.from(this.responseXml(request, user, options)).toString('base64');
  }

  responseXml(request: AuthnRequest, user: SamlUser, options: ResponseOptions = {}): string {
    const now = options.issueInstant ?? new Date();
    const notOnOrAfter = options.notOnOrAfter ?? new Date(now.getTime() + 5 * 60_000);
    const notBefore = options.notBefore ?? new Date(now.getTime() - 60_000);
    const issuer = options.issuer ?? this.entityId;
    const responseId = newId();
    const inResponseTo = options.inResponseTo === undefined ? request.id : options.inResponseTo;
    const assertion = this.assertionXml({
      id: newId(),
      issuer,
      user,
      now,
      notBefore,
      notOnOrAfter,
      audience: options.audience ?? request.issuer,
      recipient: options.recipient ?? request.acsUrl,
      confirmInResponseTo: options.confirmInResponseTo === false ? null : request.id,
      groupsAttribute: options.groupsAttribute ?? 'groups',
    });
    const sign = options.sign ?? 'assertion';
    const key = options.signingKey ?? this.key.privateKey;
    const signedAssertion = sign === 'assertion' || sign === 'both' ? signElement(assertion, 'Assertion', key) : assertion;
    const response =
      `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"` +
      ` ID="${responseId}" Version="2.0" IssueInstant="${now.toISOString()}" Destination="${escape(request.acsUrl)}"` +
      `${inResponseTo === null ? '' : ` InResponseTo="${escape(inResponseTo)}"`}>` +
      `<saml:Issuer>${escape(issuer)}</saml:Issuer>` +
      `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
      signedAssertion +
      `</samlp:Response>`;
    return sign === 'response' || sign === 'both' ? signElement(response, 'Response', key) : response;
  }

  private assertionXml(a: {
    id: string;
    issuer: string;
    user: SamlUser;
    now: Date;
    notBefore: Date;
    notOnOrAfter: Date;
    audience: string;
    recipient: string;
    confirmInResponseTo: string | null;
    groupsAttribute: string;
  }): string {
    const attributes: Record<string, string[]> = { ...a.user.attributes };
    if (a.user.email) attributes.email = [a.user.email];
    if (a.user.name) attributes.displayName = [a.user.name];
    if (a.user.groups) attributes[a.groupsAttribute] = a.user.groups;
    const attributeXml = Object.entries(attributes)
      .map(
        ([name, values]) =>
          `<saml:Attribute Name="${escape(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
          values.map((v) => `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${escape(v)}</saml:AttributeValue>`).join('') +
          `</saml:Attribute>`,
      )
      .join('');
    return (
      `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${a.id}" Version="2.0" IssueInstant="${a.now.toISOString()}">` +
      `<saml:Issuer>${escape(a.issuer)}</saml:Issuer>` +
      `<saml:Subject>` +
      `<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${escape(a.user.nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
      `<saml:SubjectConfirmationData NotOnOrAfter="${a.notOnOrAfter.toISOString()}" Recipient="${escape(a.recipient)}"` +
      `${a.confirmInResponseTo === null ? '' : ` InResponseTo="${escape(a.confirmInResponseTo)}"`}/>` +
      `</saml:SubjectConfirmation>` +
      `</saml:Subject>` +
      `<saml:Conditions NotBefore="${a.notBefore.toISOString()}" NotOnOrAfter="${a.notOnOrAfter.toISOString()}">` +
      `<saml:AudienceRestriction><saml:Audience>${escape(a.audience)}</saml:Audience></saml:AudienceRestriction>` +
      `</saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${a.now.toISOString()}" SessionIndex="${newId()}">` +
      `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>` +
      `</saml:AuthnStatement>` +
      `<saml:AttributeStatement>${attributeXml}</saml:AttributeStatement>` +
      `</saml:Assertion>`
    );
  }
}

/** An enveloped signature over the element, placed after its Issuer as the SAML schema requires. */
function signElement(xml: string, localName: 'Assertion' | 'Response', privateKey: string): string {
  const signer = new SignedXml({ privateKey, canonicalizationAlgorithm: EXC_C14N, signatureAlgorithm: SIGNATURE_ALGORITHM });
  signer.addReference({ xpath: `/*[local-name(.)='${localName}']`, transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: DIGEST_ALGORITHM });
  signer.computeSignature(xml, { location: { reference: `/*[local-name(.)='${localName}']/*[local-name(.)='Issuer']`, action: 'after' } });
  return signer.getSignedXml();
}

function newId(): string {
  return `_${randomBytes(16).toString('hex')}`;
}

function escape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
