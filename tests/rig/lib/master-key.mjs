// Cosmos DB master-key signatures, written independently of the Rust implementation so the
// rig can cross-check it.
//
// String to sign: lower(verb) \n lower(resourceType) \n resourceLink \n lower(x-ms-date) \n
// (lower(Date) only when x-ms-date is empty) \n, HMAC-SHA256 keyed with the base64-decoded
// master key, base64 of the MAC as sig.
import crypto from 'node:crypto';

// A database RID is 4 bytes, which base64 spells as 8 characters ending in "==".
function looksLikeDatabaseRid(segment) {
  if (typeof segment !== 'string' || !/^[A-Za-z0-9+/\-_]{6}==$/.test(segment)) return false;
  return Buffer.from(segment, 'base64').length === 4;
}

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

// Maps a request target (path plus optional query) to the (resourceType, resourceLink) pair
// the signature covers.
export function resourceOf(target) {
  const path = target.split('?', 1)[0];
  const segs = path.split('/').filter((s) => s.length > 0).map(decodeSegment);
  if (segs.length === 0) return { resourceType: '', resourceLink: '', ridBased: false };

  const ridBased = segs[0].toLowerCase() === 'dbs' && looksLikeDatabaseRid(segs[1]);
  let resourceType;
  let linkSegs;
  const opsAt = segs.length - 2;
  if (segs.length >= 5 && segs[opsAt] === 'operations' && segs[opsAt - 2] === 'colls') {
    resourceType = 'colls';
    linkSegs = segs.slice(0, opsAt);
  } else if (segs.length % 2 === 1) {
    resourceType = segs[segs.length - 1];
    linkSegs = segs.slice(0, -1);
  } else {
    resourceType = segs[segs.length - 2];
    linkSegs = segs;
  }
  let resourceLink = linkSegs.join('/');
  if (ridBased || resourceType.toLowerCase() === 'offers') resourceLink = resourceLink.toLowerCase();
  return { resourceType: resourceType.toLowerCase(), resourceLink, ridBased };
}

export function stringToSign(verb, resourceType, resourceLink, xMsDate, date) {
  const msDate = (xMsDate ?? '').toLowerCase();
  const fallback = msDate === '' ? (date ?? '').toLowerCase() : '';
  return `${verb.toLowerCase()}\n${resourceType.toLowerCase()}\n${resourceLink}\n${msDate}\n${fallback}\n`;
}

export function signature(masterKey, text) {
  const key = Buffer.from(masterKey, 'base64');
  return crypto.createHmac('sha256', key).update(text, 'utf8').digest('base64');
}

// The Authorization header value for a master-key request, percent-encoded as SDKs send it.
export function masterAuthorization(masterKey, verb, target, xMsDate) {
  const { resourceType, resourceLink } = resourceOf(target);
  const sig = signature(masterKey, stringToSign(verb, resourceType, resourceLink, xMsDate, ''));
  return encodeURIComponent(`type=master&ver=1.0&sig=${sig}`);
}

// Splits "type=..&ver=..&sig=.." (raw or percent-encoded) into its parts. The sig is everything
// after "sig=", so a JWT or base64 value with '=' or '&' inside stays whole.
export function parseAuthorization(value) {
  if (typeof value !== 'string' || value === '') return null;
  let text = value;
  if (/^type%3d/i.test(text)) {
    try {
      text = decodeURIComponent(text);
    } catch {
      return null;
    }
  }
  const m = /^type=([^&]*)&ver=([^&]*)&sig=(.*)$/s.exec(text);
  if (!m) return null;
  return { type: m[1], ver: m[2], sig: m[3] };
}

// Recomputes the signature of a received master-key request. Returns null when the request
// does not carry a master-key Authorization header.
export function checkMasterRequest(masterKey, method, target, headers) {
  const auth = parseAuthorization(headers.authorization);
  if (!auth || auth.type !== 'master') return null;
  const { resourceType, resourceLink } = resourceOf(target);
  const text = stringToSign(method, resourceType, resourceLink, headers['x-ms-date'], headers.date);
  const expected = Buffer.from(signature(masterKey, text));
  const got = Buffer.from(auth.sig);
  const valid = expected.length === got.length && crypto.timingSafeEqual(expected, got);
  return { valid, resourceType, resourceLink };
}
