// Preloaded (`node --import ./auth_preload.mjs …`) into the conformance suite's `server` mode,
// which has no option for credentials: adds `x-api-key: $BROKER_API_KEY` to every request to
// $BROKER_ORIGIN, the way any authenticated client (or script with a local API key) calls the
// broker. Requests to other origins are untouched.
import { Agent, setGlobalDispatcher } from 'undici';

const origin = process.env.BROKER_ORIGIN;
const key = process.env.BROKER_API_KEY;
if (!origin || !key) throw new Error('auth_preload.mjs needs BROKER_ORIGIN and BROKER_API_KEY');

function withKey(headers) {
  if (headers == null) return { 'x-api-key': key };
  if (Array.isArray(headers)) return [...headers, 'x-api-key', key];
  if (typeof headers[Symbol.iterator] === 'function' && typeof headers !== 'string') {
    const flat = [];
    for (const [k, v] of headers) flat.push(k, v);
    return [...flat, 'x-api-key', key];
  }
  return { ...headers, 'x-api-key': key };
}

const agent = new Agent().compose((dispatch) => (opts, handler) => {
  const target = typeof opts.origin === 'string' ? opts.origin : opts.origin?.origin;
  if (target === origin) opts = { ...opts, headers: withKey(opts.headers) };
  return dispatch(opts, handler);
});
setGlobalDispatcher(agent);
