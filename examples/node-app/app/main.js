'use strict';

// A script with a dependency from node_modules, and a TLS client context from Node's built-in CA store.
const tls = require('node:tls');
const slugify = require('slugify-lite');

const words = process.argv.slice(2);
console.log(slugify(words.length ? words.join(' ') : 'Héllo from pare!'));
console.log(
  `uid ${process.getuid()}, node ${process.version}, ${tls.rootCertificates.length} root certificates`,
);
