#ifndef PORTCULLIS_CLIBCURL_SHIM_H
#define PORTCULLIS_CLIBCURL_SHIM_H

#include <curl/curl.h>

/*
 * curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call. These wrappers give each
 * argument type its own non-variadic entry point; the caller picks the one matching the option's type
 * (CURLOPTTYPE_LONG, _OFF_T, _STRINGPOINT, _OBJECTPOINT, _FUNCTIONPOINT), exactly as the C API requires.
 */

/* The signature of CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION callbacks. */
typedef size_t (*portcullis_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);

/* The signature of CURLOPT_XFERINFOFUNCTION callbacks. Returning non-zero aborts the transfer. */
typedef int (*portcullis_curl_xferinfo_callback)(
    void *context, curl_off_t download_total, curl_off_t download_now, curl_off_t upload_total,
    curl_off_t upload_now);

/* CURL_GLOBAL_DEFAULT is a macro built from other macros; a constant Swift can always see. */
static const long portcullis_CURL_GLOBAL_DEFAULT = CURL_GLOBAL_DEFAULT;

static inline CURLcode portcullis_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode portcullis_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/* libcurl copies string options (since 7.17), so `value` only has to live for the call. NULL resets. */
static inline CURLcode portcullis_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

/* Object pointers (callback contexts, CURLOPT_ERRORBUFFER) are NOT copied: they must outlive the transfer. */
static inline CURLcode portcullis_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode portcullis_curl_setopt_write_function(CURL *handle, portcullis_curl_data_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

static inline CURLcode portcullis_curl_setopt_header_function(CURL *handle, portcullis_curl_data_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}

static inline CURLcode portcullis_curl_setopt_xferinfo_function(
    CURL *handle, portcullis_curl_xferinfo_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}

static inline CURLcode portcullis_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode portcullis_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/* The returned string belongs to the handle: copy it before curl_easy_cleanup. */
static inline CURLcode portcullis_curl_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}

#endif
