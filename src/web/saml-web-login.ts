// Browser sign-in with SAML 2.0, SP-initiated, through @node-saml/node-saml.
// The library checks the XML signature over the assertion (required), the
// audience, NotBefore/NotOnOrAfter and InResponseTo against the requests
// this gateway made (kept in the shared identity state). On top of that this
// module checks what the library leaves to its caller: the issuer, the
// bearer confirmation's Recipient, and that an assertion is used only once.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SAML, ValidateInResponseTo, type CacheProvider, type Profile } from '@node-saml/node-saml';
import type { SamlWebLoginConfig } from '../config/identity-schema.js';
import { describeUnusable, readGroupsClaim, readStringClaim, UnusableClaimError, usableClaim } from '../identity/claims.js';
import type { IdentityState } from '../identity/state/identity-state.js';
import { cookieName, readCookie, setCookie } from './cookies.js';
import { SAML_ACS_PATH, SAML_METADATA_PATH } from './login-paths.js';
import { loginFailed, safeReturnPath } from './web-http.js';
import { digest, sameSecret, type SessionIdentity } from './web-sessions.js';

const LOGIN_TTL_MS = 10 * 60_000;
const BINDING_COOKIE = 'modelgate_saml_login';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

interface PendingLogin {
  returnTo: string;
  binding: string;
}

/** The parts of node-saml's xml2js view of the signed assertion that the extra checks read. */
interface ParsedAssertion {
  Assertion?: {
    $?: { ID?: string };
    Subject?: Array<{
      SubjectConfirmation?: Array<{
        $?: { Method?: string };
        SubjectConfirmationData?: Array<{ $?: { Recipient?: string; NotOnOrAfter?: string } }>;
      }>;
    }>;
    Conditions?: Array<{ $?: { NotOnOrAfter?: string } }>;
  };
}

export class SamlWebLogin {
  private readonly saml: SAML;
  readonly spEntityId: string;
  private readonly acsUrl: string;

  constructor(
    private readonly config: SamlWebLoginConfig,
    private readonly state: IdentityState,
    private readonly publicUrl: string,
    private readonly clockSkewMs: number,
  ) {
    this.spEntityId = config.sp_entity_id ?? `${publicUrl}${SAML_METADATA_PATH}`;
    this.acsUrl = `${publicUrl}${SAML_ACS_PATH}`;
    this.saml = new SAML({
      entryPoint: config.idp_sso_url,
      issuer: this.spEntityId,
      audience: this.spEntityId,
      callbackUrl: this.acsUrl,
      idpCert: config.idp_certificate,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: LOGIN_TTL_MS,
      cacheProvider: requestIdCache(state),
      acceptedClockSkewMs: clockSkewMs,
      maxAssertionAgeMs: config.max_authentication_age,
      identifierFormat: null,
      // Asking for password authentication would refuse users who signed in with MFA or a passkey.
      disableRequestedAuthnContext: true,
    });
  }

  private get secure(): boolean {
    return this.publicUrl.startsWith('https:');
  }

  /** The IdP URL carrying a fresh AuthnRequest (HTTP-Redirect binding). */
  async begin(res: ServerResponse, returnTo: string | null): Promise<string> {
    const relayState = randomBytes(24).toString('base64url');
    const binding = randomBytes(32).toString('base64url');
    const pending: PendingLogin = { returnTo: safeReturnPath(returnTo), binding: digest(binding) };
    await this.state.put('saml_login', relayState, JSON.stringify(pending), Date.now() + LOGIN_TTL_MS);
    // The IdP answers with a cross-site POST, which a SameSite=Lax cookie would not survive.
    if (this.secure) {
      setCookie(res, cookieName(BINDING_COOKIE, true), binding, { secure: true, sameSite: 'None', maxAge: LOGIN_TTL_MS / 1000 });
    }
    return this.saml.getAuthorizeUrlAsync(relayState, undefined, {});
  }

  /** Validates the IdP's POST to the assertion consumer service. */
  async complete(req: IncomingMessage, res: ServerResponse, form: URLSearchParams): Promise<{ identity: SessionIdentity; returnTo: string }> {
    const samlResponse = form.get('SAMLResponse');
    if (!samlResponse) throw loginFailed('saml_response_missing', 'The POST carries no SAMLResponse.');

    let profile: Profile | null;
    try {
      ({ profile } = await this.saml.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (err) {
      throw classifySamlFailure(err);
    }
    if (!profile) throw loginFailed('saml_assertion_invalid', 'The SAML response carries no assertion.');
    if (this.config.idp_entity_id !== undefined && profile.issuer !== this.config.idp_entity_id) {
      throw loginFailed('saml_issuer_invalid', `The assertion was issued by ${JSON.stringify(profile.issuer ?? null)}, not by the configured IdP.`);
    }
    const assertion = (profile.getAssertion?.() ?? {}) as ParsedAssertion;
    this.checkBearerRecipient(assertion);
    await this.rememberAssertion(profile.issuer, assertion);

    const pending = await this.takePendingLogin(req, res, form.get('RelayState'));
    return { identity: this.identityFrom(profile), returnTo: pending.returnTo };
  }

  /** SP metadata for the IdP administrator: entity ID, ACS URL, and that assertions must be signed. */
  metadata(): string {
    return this.saml.generateServiceProviderMetadata(null, null);
  }

  /** SAML Profiles §4.1.4.2: a bearer confirmation must name this ACS as its Recipient, so an assertion for another SP cannot be replayed here. */
  private checkBearerRecipient(assertion: ParsedAssertion): void {
    const confirmations = assertion.Assertion?.Subject?.[0]?.SubjectConfirmation ?? [];
    const confirmed = confirmations.some(
      (c) => c.$?.Method === BEARER && c.SubjectConfirmationData?.some((data) => data.$?.Recipient === this.acsUrl),
    );
    if (!confirmed) {
      throw loginFailed('saml_recipient_invalid', `The assertion is not addressed to this gateway's assertion consumer service (${this.acsUrl}).`);
    }
  }

  /** Each assertion ID is accepted once, until it expires, across every gateway instance. */
  private async rememberAssertion(issuer: string, assertion: ParsedAssertion): Promise<void> {
    const id = assertion.Assertion?.$?.ID;
    if (!id) throw loginFailed('saml_assertion_invalid', 'The assertion has no ID.');
    const confirmationExpiry = assertion.Assertion?.Subject?.[0]?.SubjectConfirmation?.flatMap((c) => c.SubjectConfirmationData ?? [])
      .map((data) => Date.parse(data.$?.NotOnOrAfter ?? ''))
      .filter(Number.isFinite);
    const conditionsExpiry = Date.parse(assertion.Assertion?.Conditions?.[0]?.$?.NotOnOrAfter ?? '');
    const validUntil = Math.max(...(confirmationExpiry ?? []), Number.isFinite(conditionsExpiry) ? conditionsExpiry : 0, Date.now() + LOGIN_TTL_MS);
    const now = Date.now();
    const first = await this.state.putIfAbsent('saml_assertion', `${issuer}\n${id}`, '1', validUntil + this.clockSkewMs, now);
    if (!first) throw loginFailed('saml_assertion_replayed', 'This SAML assertion has been used before; sign in again.');
  }

  private async takePendingLogin(req: IncomingMessage, res: ServerResponse, relayState: string | null): Promise<PendingLogin> {
    const stored = relayState ? await this.state.take('saml_login', relayState, Date.now()) : undefined;
    if (stored === undefined) throw loginFailed('login_expired', 'This sign-in has expired or was already used; start signing in again.');
    const pending = JSON.parse(stored) as PendingLogin;
    if (this.secure) {
      const name = cookieName(BINDING_COOKIE, true);
      const binding = readCookie(req, name);
      setCookie(res, name, '', { secure: true, sameSite: 'None', maxAge: 0 });
      if (!binding || !sameSecret(digest(binding), pending.binding)) {
        throw loginFailed('login_binding_mismatch', 'This sign-in was started in another browser; start signing in again here.');
      }
    }
    return pending;
  }

  private identityFrom(profile: Profile): SessionIdentity {
    try {
      return this.readIdentity(profile);
    } catch (err) {
      if (err instanceof UnusableClaimError) throw loginFailed('saml_attribute_invalid', describeUnusable('attribute', err.claim, err.problem));
      throw err;
    }
  }

  private readIdentity(profile: Profile): SessionIdentity {
    const attributes = (profile.attributes ?? {}) as Record<string, unknown>;
    const { attributes: names, group_prefix } = this.config;
    const subject = names.subject ? readStringClaim(attributes, names.subject) : usableClaim('NameID', profile.nameID);
    if (!subject) throw loginFailed('saml_subject_missing', `The assertion has no subject${names.subject ? ` attribute "${names.subject}"` : ' (NameID)'}.`);
    const groups = readGroupsClaim(attributes, names.groups).map((g) => group_prefix + g);
    if (groups.length === 0 && Object.keys(attributes).some((name) => name.endsWith('/claims/groups.link'))) {
      throw loginFailed(
        'saml_groups_overage',
        'The assertion has too many groups to carry them (Microsoft Entra ID groups overage). Ask your IdP administrator to send only the groups assigned to the application.',
      );
    }
    const identity: SessionIdentity = { subject, groups, origin: profile.issuer, method: 'saml' };
    const email = readStringClaim(attributes, names.email) ?? usableClaim('email', typeof profile.email === 'string' ? profile.email : undefined);
    const name = readStringClaim(attributes, names.name);
    if (email) identity.email = email;
    if (name) identity.name = name;
    return identity;
  }
}

/** node-saml's request-ID cache over the shared identity state, so any instance can receive the IdP's answer. */
function requestIdCache(state: IdentityState): CacheProvider {
  return {
    async saveAsync(key, value) {
      const createdAt = Date.now();
      await state.put('saml_request', key, value, createdAt + LOGIN_TTL_MS);
      return { value, createdAt };
    },
    async getAsync(key) {
      return (await state.get('saml_request', key, Date.now())) ?? null;
    },
    async removeAsync(key) {
      if (key === null) return null;
      const value = await state.take('saml_request', key, Date.now());
      return value ?? null;
    },
  };
}

const SAML_FAILURES: ReadonlyArray<[RegExp, string]> = [
  [/signature/i, 'saml_signature_invalid'],
  // node-saml finds no subject confirmation only when none is inside its validity window.
  [/expired|too old|not yet valid|no valid subject confirmation/i, 'saml_assertion_expired'],
  [/audience/i, 'saml_audience_invalid'],
  [/InResponseTo/i, 'saml_in_response_to_invalid'],
];

function classifySamlFailure(err: unknown) {
  const message = err instanceof Error ? err.message : String(err);
  const code = SAML_FAILURES.find(([pattern]) => pattern.test(message))?.[1] ?? 'saml_assertion_invalid';
  return loginFailed(code, `The SAML response was refused: ${message}`, err);
}
