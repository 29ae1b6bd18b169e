// IPv4 (four decimal octets, no leading zeros) and IPv6 (RFC 4291 text
// forms, with '::' compression and an embedded IPv4 tail). Version strings
// ("v1.2.3.4", "version 10.0.0.1") are not addresses.
import { forEachMatch, NON_WHITESPACE, type Detector, type ReportSpan } from '../detector.js';
import { DIGIT_KEYWORDS } from '../text.js';

export const MAX_IP_LENGTH = 45;

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
// Not after '-' either: "section-8.1.2.2", "v-1.2.3.4".
const IPV4 = new RegExp(`(?<![\\w.-])${OCTET}(?:\\.${OCTET}){3}(?![\\w]|\\.\\d)`, 'g');
// Version strings and document sections are not addresses.
const VERSION_WORDS = /(?:\b(?:version|ver|v|release|build|firmware|sdk|api|section|sections|sec|chapter|clause|paragraph|para|step|figure|fig|table|rfc)\.?|§)\s*$/i;
const HEX = /^[0-9A-Fa-f]{1,4}$/;
const IPV4_EXACT = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

export function isIpv6(candidate: string): boolean {
  let text = candidate;
  let groupsAvailable = 8;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    if (!IPV4_EXACT.test(text.slice(lastColon + 1))) return false;
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const parse = (part: string): string[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    return groups.every((g) => HEX.test(g)) ? groups : undefined;
  };
  const head = parse(halves[0]!);
  if (head === undefined) return false;
  if (halves.length === 1) return head.length === groupsAvailable;
  const tail = parse(halves[1]!);
  if (tail === undefined) return false;
  groupsAvailable -= 1;
  return head.length + tail.length <= groupsAvailable;
}

function isIpv6Char(text: string, index: number): boolean {
  const c = text.charCodeAt(index);
  return (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 46;
}
const IPV6_EDGE = /[\w:.]/;

export function createIpAddressDetector(): Detector {
  return {
    id: 'pii.ip_address',
    types: ['IP_ADDRESS'],
    keywords: [...DIGIT_KEYWORDS, ':'],
    spanChars: NON_WHITESPACE,
    spanAnchor: /[0-9:]/,
    maxLength: MAX_IP_LENGTH,
    lookbehind: 12,
    lookahead: 2,
    detect(text: string, report: ReportSpan): void {
      forEachMatch(IPV4, text, (m) => {
        if (VERSION_WORDS.test(text.slice(Math.max(0, m.index - 12), m.index))) return;
        report({ type: 'IP_ADDRESS', start: m.index, end: m.index + m[0].length, confidence: 0.85, rule: 'pii.ip_address.v4', validator: 'ipv4-octets' });
      });
      // IPv6: grow each colon that sits between hex digits or colons into the longest address-like run.
      for (let colon = text.indexOf(':'); colon !== -1; colon = text.indexOf(':', colon + 1)) {
        if (!isIpv6Char(text, colon - 1) && !isIpv6Char(text, colon + 1)) continue;
        let start = colon;
        let colons = 1;
        while (start > 0 && colon - start < MAX_IP_LENGTH && isIpv6Char(text, start - 1)) {
          start--;
          if (text.charCodeAt(start) === 58) colons++;
        }
        let end = colon + 1;
        while (end < text.length && end - start < MAX_IP_LENGTH && isIpv6Char(text, end)) {
          if (text.charCodeAt(end) === 58) colons++;
          end++;
        }
        colon = Math.max(colon, end - 1);
        // Clock times ("14:05:59") and ratios have fewer colons than any address.
        if (colons < 2) continue;
        // Sentence punctuation after the address.
        while (end > start && (text[end - 1] === '.' || (text[end - 1] === ':' && text[end - 2] !== ':'))) end--;
        while (start < end && text[start] === '.') start++;
        if (IPV6_EDGE.test(text[start - 1] ?? '') || /\w/.test(text[end] ?? '')) continue;
        const candidate = text.slice(start, end);
        if (candidate.split(':').length < 3 || !isIpv6(candidate)) continue;
        const groups = candidate.split(':').filter((g) => g !== '');
        // "a::b" or "dead::beef" in code are syntactically addresses; ask for a digit or several groups.
        if (groups.length < 3 && !/\d/.test(candidate)) continue;
        report({ type: 'IP_ADDRESS', start, end, confidence: 0.85, rule: 'pii.ip_address.v6', validator: 'ipv6-groups' });
      }
    },
  };
}
