/*
 * digest: a small C app on OpenSSL. Prints the OpenSSL version, the SHA-256 of each argument, and how many CA
 * certificates a TLS client context loads from the system store (what an HTTPS client would trust).
 * Build (the test does this):  gcc -O2 -o digest digest.c -lssl -lcrypto
 */
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
  for (int i = 1; i < argc; i++) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(argv[i], strlen(argv[i]), md, &n, EVP_sha256(), NULL)) return 2;
    printf("sha256(%s) = ", argv[i]);
    for (unsigned int j = 0; j < n; j++) printf("%02x", md[j]);
    printf("\n");
  }
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || !SSL_CTX_set_default_verify_paths(ctx)) return 3;
  STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
  printf("trusted CAs: %d\n", sk_X509_OBJECT_num(objs));
  SSL_CTX_free(ctx);
  return 0;
}
