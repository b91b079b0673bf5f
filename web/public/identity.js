// Identity provider hook. The local stack uses the API's dev login, so this file defines nothing.
// A studio replaces this file (or serves its own /identity.js) with, for example:
//
//   window.assetFarmIdentity = {
//     label: 'Sign in with Studio SSO',
//     asksForUser: false,
//     async signIn() {
//       // run the studio's OAuth/OIDC flow; return a JWT the API verifies (JWT_ALGORITHM, JWT_PUBLIC_KEY)
//       return { token, user };
//     },
//   };
