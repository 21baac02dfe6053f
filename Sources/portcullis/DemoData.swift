import PortcullisCore

/// A self-contained demonstration: one ES256 key and a few tokens minted for it by an independent library
/// (Python joserfc), valid until 2100. Nothing here is secret: the private key was thrown away.
enum DemoData {
    static let jwks =
        #"{"keys":[{"crv":"P-256","x":"ssclDABKT5ip20N30crY36wAPSAInKwLVFShP7ojZi4","y":"vIzIIG6HdGFLEEwOMl_seH7mYyKedKtaQixjJuWdThA","kid":"demo-es256","alg":"ES256","use":"sig","kty":"EC"}]}"#

    static let issuer = "https://demo.portcullis.invalid/"
    static let audience = "demo-api"
    static let roleClaimKey = #"."https://postgrest-demo.de/role""#

    static let cases: [(description: String, token: String)] = [
        (
            "a valid ES256 token",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tZXMyNTYifQ.eyJpc3MiOiJodHRwczovL2RlbW8ucG9ydGN1bGxpcy5pbnZhbGlkLyIsImF1ZCI6ImRlbW8tYXBpIiwic3ViIjoidXNlci00MiIsImlhdCI6MTc2Mzg1NjAwMCwiaHR0cHM6Ly9wb3N0Z3Jlc3QtZGVtby5kZS9yb2xlIjoid2VidXNlciIsInJlYWxtX2FjY2VzcyI6eyJyb2xlcyI6WyJyZWFkZXIiLCJlZGl0b3IiXX0sImV4cCI6NDEwMjQ0NDgwMH0.m3wQG3xNS3fRdcnSnHOlPmsI0Nv0WOyBObPYRZf8fPCalVEzRqyDrjTCv56qh7x8EHU1iyUKJF4Mol_NtpBPBQ"
        ),
        (
            "the same token, expired",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tZXMyNTYifQ.eyJpc3MiOiJodHRwczovL2RlbW8ucG9ydGN1bGxpcy5pbnZhbGlkLyIsImF1ZCI6ImRlbW8tYXBpIiwic3ViIjoidXNlci00MiIsImlhdCI6MTc2Mzg1NjAwMCwiaHR0cHM6Ly9wb3N0Z3Jlc3QtZGVtby5kZS9yb2xlIjoid2VidXNlciIsInJlYWxtX2FjY2VzcyI6eyJyb2xlcyI6WyJyZWFkZXIiLCJlZGl0b3IiXX0sImV4cCI6MTcwMDAwMDAwMH0.KRtteQwSHOGY3y3Lg2Ry7Qkb-hsvPdJK0TYDOnpe9RI7TIwEpKLJ07r7q0rvph4jJcxdFPUUknoY-DYoNTi6fA"
        ),
        (
            "a token for another audience",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tZXMyNTYifQ.eyJpc3MiOiJodHRwczovL2RlbW8ucG9ydGN1bGxpcy5pbnZhbGlkLyIsImF1ZCI6InNvbWVvbmUtZWxzZSIsInN1YiI6InVzZXItNDIiLCJpYXQiOjE3NjM4NTYwMDAsImh0dHBzOi8vcG9zdGdyZXN0LWRlbW8uZGUvcm9sZSI6IndlYnVzZXIiLCJyZWFsbV9hY2Nlc3MiOnsicm9sZXMiOlsicmVhZGVyIiwiZWRpdG9yIl19LCJleHAiOjQxMDI0NDQ4MDB9.VIw-uYtFKqC3jMR5a9OreNuOP7UGd98V_9uBjmZuCTbtYiIIMJkzoVSh4sMsVAcasS3_TXrUDeDAyKD_G25a1A"
        ),
        (
            "the valid token with its role changed to admin",
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiIsImtpZCI6ImRlbW8tZXMyNTYifQ.eyJpc3MiOiJodHRwczovL2RlbW8ucG9ydGN1bGxpcy5pbnZhbGlkLyIsImF1ZCI6ImRlbW8tYXBpIiwic3ViIjoidXNlci00MiIsImlhdCI6MTc2Mzg1NjAwMCwiaHR0cHM6Ly9wb3N0Z3Jlc3QtZGVtby5kZS9yb2xlIjoiYWRtaW4iLCJyZWFsbV9hY2Nlc3MiOnsicm9sZXMiOlsicmVhZGVyIiwiZWRpdG9yIl19LCJleHAiOjQxMDI0NDQ4MDB9.m3wQG3xNS3fRdcnSnHOlPmsI0Nv0WOyBObPYRZf8fPCalVEzRqyDrjTCv56qh7x8EHU1iyUKJF4Mol_NtpBPBQ"
        ),
        (
            "an unsigned token (alg none)",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2RlbW8ucG9ydGN1bGxpcy5pbnZhbGlkLyIsImF1ZCI6ImRlbW8tYXBpIiwic3ViIjoidXNlci00MiIsImlhdCI6MTc2Mzg1NjAwMCwiaHR0cHM6Ly9wb3N0Z3Jlc3QtZGVtby5kZS9yb2xlIjoid2VidXNlciIsInJlYWxtX2FjY2VzcyI6eyJyb2xlcyI6WyJyZWFkZXIiLCJlZGl0b3IiXX0sImV4cCI6NDEwMjQ0NDgwMH0."
        ),
    ]
}
