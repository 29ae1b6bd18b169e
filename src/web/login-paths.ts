// Browser sign-in paths, apart from the OIDC and SAML modules: the router
// needs them on every gateway, the modules (openid-client, node-saml and
// its XML stack) only where that sign-in is configured.
export const OIDC_CALLBACK_PATH = '/auth/oidc/callback';
export const SAML_ACS_PATH = '/auth/saml/acs';
export const SAML_METADATA_PATH = '/auth/saml/metadata';
