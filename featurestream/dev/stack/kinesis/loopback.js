// Preloaded with `node -r ./loopback.js main.js`: kinesis-local hard-codes its listen host to
// 0.0.0.0, and the local stack must only ever listen on the loopback interface. Every
// net.Server (http and https build on it) gets its wildcard host rewritten to 127.0.0.1, or to
// FEATURESTREAM_KINESIS_HOST when that is set to another loopback address.
"use strict";

const net = require("net");

const LOOPBACK = process.env.FEATURESTREAM_KINESIS_HOST || "127.0.0.1";
const WILDCARDS = new Set([undefined, null, "", "0.0.0.0", "::", "::0", "[::]"]);

function isPort(value) {
  return typeof value === "number" || (typeof value === "string" && /^\d+$/.test(value));
}

const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const first = args[0];
  if (first !== null && typeof first === "object" && !Array.isArray(first)) {
    // listen({ port, host, ... }); a handle or a unix path has no host to rewrite.
    if (first.path === undefined && first._handle === undefined && first.fd === undefined) {
      if (WILDCARDS.has(first.host)) {
        args[0] = { ...first, host: LOOPBACK };
      }
    }
  } else if (isPort(first)) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] === "function" || args.length < 2) {
      args.splice(1, 0, LOOPBACK);
    } else if (WILDCARDS.has(args[1]) || typeof args[1] === "number") {
      if (typeof args[1] === "number") {
        args.splice(1, 0, LOOPBACK); // listen(port, backlog, cb)
      } else {
        args[1] = LOOPBACK;
      }
    }
  }
  return originalListen.apply(this, args);
};
