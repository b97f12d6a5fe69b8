// login.js - /login: a link followed from another site arrives without
// the session cookie (SameSite=Strict keeps it from cross-site
// navigations), though the browser may hold a live one. A same-origin
// request carries it: when the session is live, go on to the page asked
// for instead of asking for the token again.
const next = document.querySelector('input[name="next"]')?.value || '/';
const r = await fetch('/v1/session', { credentials: 'same-origin' });
await r.text(); // read: an unread body keeps the request open
if (r.ok && next.startsWith('/') && !next.startsWith('//')) location.replace(next);
