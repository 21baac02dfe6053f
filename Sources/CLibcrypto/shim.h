#ifndef PORTCULLIS_CLIBCRYPTO_SHIM_H
#define PORTCULLIS_CLIBCRYPTO_SHIM_H

// The parts of libcrypto 3 that Portcullis uses: EVP keys built from parameters,
// one-shot digest-verify, HMAC and constant-time comparison.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

// Function-like and composite macros are not imported into Swift; these constants carry their values.
static const int portcullis_EVP_PKEY_PUBLIC_KEY = EVP_PKEY_PUBLIC_KEY;

// OSSL_PARAM keeps pointers to parameter names, so they must outlive the parameters. String literals do;
// strings bridged from Swift live only for one call.
static const char *const portcullis_PARAM_RSA_N = OSSL_PKEY_PARAM_RSA_N;
static const char *const portcullis_PARAM_RSA_E = OSSL_PKEY_PARAM_RSA_E;
static const char *const portcullis_PARAM_GROUP_NAME = OSSL_PKEY_PARAM_GROUP_NAME;
static const char *const portcullis_PARAM_PUB_KEY = OSSL_PKEY_PARAM_PUB_KEY;

// Signing and key generation (the developer commands `keygen` and `token`).
#include <openssl/ec.h>
#include <openssl/rand.h>

static const int portcullis_EVP_PKEY_KEYPAIR = EVP_PKEY_KEYPAIR;
static const char *const portcullis_PARAM_RSA_D = OSSL_PKEY_PARAM_RSA_D;
static const char *const portcullis_PARAM_RSA_FACTOR1 = OSSL_PKEY_PARAM_RSA_FACTOR1;
static const char *const portcullis_PARAM_RSA_FACTOR2 = OSSL_PKEY_PARAM_RSA_FACTOR2;
static const char *const portcullis_PARAM_RSA_EXPONENT1 = OSSL_PKEY_PARAM_RSA_EXPONENT1;
static const char *const portcullis_PARAM_RSA_EXPONENT2 = OSSL_PKEY_PARAM_RSA_EXPONENT2;
static const char *const portcullis_PARAM_RSA_COEFFICIENT1 = OSSL_PKEY_PARAM_RSA_COEFFICIENT1;
static const char *const portcullis_PARAM_PRIV_KEY = OSSL_PKEY_PARAM_PRIV_KEY;
static const char *const portcullis_PARAM_EC_PUB_X = OSSL_PKEY_PARAM_EC_PUB_X;
static const char *const portcullis_PARAM_EC_PUB_Y = OSSL_PKEY_PARAM_EC_PUB_Y;

#endif
