// An OpenID Connect provider for Tessera's social sign-in tests: panva's oidc-provider with
// one confidential client and its development login and consent pages.
//
//   node provider.js PORT REDIRECT_URI
//
// ACCOUNTS (JSON, optional) maps a login to its claims, e.g.
//   {"ada": {"email": "ada@example.test", "email_verified": false}}
// Any other login signs in as <login>@oidc.test with a verified email.
import Provider from 'oidc-provider';

const [port, redirectUri] = process.argv.slice(2);
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'tessera',
      client_secret: 'tessera-client-secret',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['tessera-test-cookie-key'] },
  async findAccount(_ctx, id) {
    const given = accounts[id] || {};
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: given.email || `${id}@oidc.test`,
          email_verified: given.email_verified ?? true,
          name: given.name || id,
        };
      },
    };
  },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
