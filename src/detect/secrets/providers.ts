// Provider credentials with a recognisable prefix. Shapes follow the
// providers' published formats (and gitleaks' rules where those are silent).
import { base62, crc32 } from './crc32.js';
import type { TokenRule } from './token-rule.js';

const BEFORE = '(?<![A-Za-z0-9_-])';
const AFTER = '(?![A-Za-z0-9_-])';

function token(body: string, flags = 'g'): RegExp {
  return new RegExp(BEFORE + body + AFTER, flags);
}

// Classic GitHub tokens end in six base62 characters of the CRC-32 of the thirty before.
function githubChecksum(secret: string): { confidence: number; validator: string } | undefined {
  const body = secret.slice(4, 34);
  const check = secret.slice(34);
  const sum = crc32(body);
  for (const alphabet of ['0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ']) {
    if (base62(sum, alphabet, 6) === check) return { confidence: 0.99, validator: 'prefix+crc32' };
  }
  return undefined;
}

export const PROVIDER_RULES: readonly TokenRule[] = [
  {
    rule: 'secret.aws_access_key_id',
    type: 'AWS_ACCESS_KEY',
    keywords: ['akia', 'asia', 'abia', 'acca', 'a3t'],
    // Key ids are base32 after a four-letter kind prefix.
    pattern: /(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])/g,
    maxLength: 20,
    confidence: 0.95,
    validator: 'prefix+base32',
    prefixLength: 4,
    minEntropy: 2.5,
  },
  {
    rule: 'secret.github_token',
    type: 'GITHUB_TOKEN',
    keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'],
    pattern: token('gh[pousr]_[A-Za-z0-9]{36}'),
    maxLength: 40,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 4,
    minEntropy: 3,
    check: (secret) => githubChecksum(secret),
  },
  {
    rule: 'secret.github_fine_grained_pat',
    type: 'GITHUB_TOKEN',
    keywords: ['github_pat_'],
    pattern: token('github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}'),
    maxLength: 93,
    confidence: 0.97,
    validator: 'prefix+entropy',
    prefixLength: 11,
    minEntropy: 3.5,
  },
  {
    rule: 'secret.gitlab_token',
    type: 'GITLAB_TOKEN',
    keywords: ['glpat-', 'gldt-', 'glrt-', 'glptt-', 'glsoat-', 'glffct-', 'glcbt-', 'glimt-', 'glagent-', 'gloas-'],
    pattern: token('gl(?:pat|dt|rt|ptt|soat|ffct|cbt|imt|agent|oas)-[A-Za-z0-9_-]{20,80}(?:\\.[0-9a-z]{2}\\.[0-9a-z]{7,9})?'),
    maxLength: 100,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 6,
    minEntropy: 3,
  },
  {
    rule: 'secret.gitlab_runner_registration_token',
    type: 'GITLAB_TOKEN',
    keywords: ['gr1348941'],
    pattern: token('GR1348941[A-Za-z0-9_-]{20}'),
    maxLength: 29,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 9,
    minEntropy: 3,
  },
  {
    rule: 'secret.slack_token',
    type: 'SLACK_TOKEN',
    keywords: ['xoxb-', 'xoxp-', 'xoxa-', 'xoxo-', 'xoxs-', 'xoxr-', 'xoxe-', 'xoxe.'],
    pattern: token('xox(?:[abposr]|e(?:\\.xox[bp])?)-(?:\\d+-){1,3}[A-Za-z0-9]{8,64}'),
    maxLength: 160,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 5,
    minEntropy: 3,
  },
  {
    rule: 'secret.slack_app_token',
    type: 'SLACK_TOKEN',
    keywords: ['xapp-'],
    pattern: token('xapp-\\d-[A-Z0-9]+-\\d+-[a-z0-9]{32,80}'),
    maxLength: 160,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 5,
    minEntropy: 3,
  },
  {
    rule: 'secret.slack_webhook',
    type: 'SLACK_TOKEN',
    keywords: ['hooks.slack.com'],
    pattern: /https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/]{40,120}(?![A-Za-z0-9+/])/g,
    maxLength: 160,
    confidence: 0.95,
    validator: 'webhook-url',
  },
  {
    rule: 'secret.stripe_key',
    type: 'STRIPE_KEY',
    keywords: ['sk_live_', 'rk_live_', 'sk_test_', 'rk_test_', 'whsec_'],
    pattern: token('(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,247}|whsec_[A-Za-z0-9+/=]{32,80})'),
    maxLength: 255,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 8,
    minEntropy: 3,
    // Test-mode keys only reach test data: still a credential, less urgent.
    check: (secret) => (secret.includes('_test_') ? { confidence: 0.75, validator: 'prefix+entropy' } : undefined),
  },
  {
    rule: 'secret.openai_key',
    type: 'OPENAI_KEY',
    keywords: ['sk-'],
    pattern: token('sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,300}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})'),
    maxLength: 320,
    confidence: 0.92,
    validator: 'prefix+entropy',
    prefixLength: 3,
    minEntropy: 3.5,
    check: (secret) => {
      // "T3BlbkFJ" is base64 for "OpenAI", embedded in real keys.
      if (secret.includes('T3BlbkFJ')) return { confidence: 0.99, validator: 'prefix+openai-marker' };
      // A bare sk- plus 48 characters is the legacy layout, shared with other vendors.
      if (!/^sk-(?:proj|svcacct|admin)-/.test(secret)) return { confidence: 0.8, validator: 'prefix+entropy' };
      return undefined;
    },
  },
  {
    rule: 'secret.anthropic_key',
    type: 'ANTHROPIC_KEY',
    keywords: ['sk-ant-'],
    pattern: token('sk-ant-(?:api|admin|sid)\\d{2}-[A-Za-z0-9_-]{32,200}'),
    maxLength: 220,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 13,
    minEntropy: 3.5,
    check: (secret) => (secret.endsWith('AA') ? { confidence: 0.99, validator: 'prefix+suffix' } : undefined),
  },
  {
    rule: 'secret.google_api_key',
    type: 'GOOGLE_API_KEY',
    keywords: ['aiza'],
    pattern: token('AIza[0-9A-Za-z_-]{35}'),
    maxLength: 39,
    confidence: 0.95,
    validator: 'prefix+entropy',
    prefixLength: 4,
    minEntropy: 3,
  },
  {
    rule: 'secret.azure_storage_account_key',
    type: 'AZURE_KEY',
    keywords: ['accountkey='],
    pattern: /AccountKey=(?<secret>[A-Za-z0-9+/]{86}==)(?![A-Za-z0-9+/=])/dgi,
    maxLength: 88,
    lookbehind: 11,
    confidence: 0.95,
    validator: 'connection-string',
    minEntropy: 4,
  },
  {
    rule: 'secret.azure_shared_access_key',
    type: 'AZURE_KEY',
    keywords: ['sharedaccesskey='],
    pattern: /SharedAccessKey=(?<secret>[A-Za-z0-9+/]{42,43}=)(?![A-Za-z0-9+/=])/dgi,
    maxLength: 44,
    lookbehind: 16,
    confidence: 0.9,
    validator: 'connection-string',
    minEntropy: 4,
  },
  {
    rule: 'secret.azure_ad_client_secret',
    type: 'AZURE_KEY',
    keywords: ['q~'],
    // Entra ID client secrets: three characters, a digit, "Q~", then 31-34 more.
    pattern: /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/g,
    maxLength: 40,
    confidence: 0.85,
    validator: 'shape+entropy',
    minEntropy: 3.5,
  },
  {
    rule: 'secret.azure_sas_signature',
    type: 'AZURE_KEY',
    keywords: ['sig='],
    // Shared access signature URLs carry the HMAC in `sig`, next to `sv=` (service version).
    pattern: /[?&]sv=\d{4}-\d{2}-\d{2}[^\s"'<>]{0,300}?[?&]sig=(?<secret>[A-Za-z0-9%+/]{40,100}(?:%3D|=){0,2})/dgi,
    maxLength: 110,
    lookbehind: 320,
    confidence: 0.9,
    validator: 'sas-url',
    minEntropy: 3.5,
  },
  {
    rule: 'secret.azure_api_management_key',
    type: 'AZURE_KEY',
    keywords: ['ocp-apim-subscription-key'],
    pattern: /Ocp-Apim-Subscription-Key["']?\s*[:=]\s*["']?(?<secret>[0-9a-f]{32})(?![0-9A-Za-z])/dgi,
    maxLength: 32,
    lookbehind: 32,
    confidence: 0.9,
    validator: 'header-name',
    minEntropy: 3,
  },
];
