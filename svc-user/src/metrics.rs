//! svc-user's own metrics (`runmesh_user_…`), beside autometrics' function metrics: accounts
//! created, sign-ins and refreshes by outcome (a wave of failed sign-ins, or of reused refresh
//! tokens, is worth a look). docs/operations.md lists them.

use std::sync::{LazyLock, Once};

use runmesh_platform::telemetry::prometheus_client::metrics::counter::Counter;
use runmesh_platform::telemetry::prometheus_client::metrics::family::Family;

use crate::error::Error;

type Labels = Vec<(&'static str, &'static str)>;

static SIGN_UPS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
static SIGN_INS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
static REFRESHES: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);

/// Adds svc-user's metrics to what `/metrics` exports (once per process).
pub fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        runmesh_platform::telemetry::register_metrics(|registry| {
            registry.register(
                "runmesh_user_sign_ups",
                "SignUp calls, by outcome (created, email_taken, invalid, error)",
                SIGN_UPS.clone(),
            );
            registry.register(
                "runmesh_user_sign_ins",
                "SignIn calls, by outcome (ok, invalid_credentials, too_many_attempts, error)",
                SIGN_INS.clone(),
            );
            registry.register(
                "runmesh_user_token_refreshes",
                "RefreshToken calls, by outcome (ok, reused, invalid, session_ended, error)",
                REFRESHES.clone(),
            );
        });
    });
}

fn count<T>(family: &Family<Labels, Counter>, ok: &'static str, result: &Result<T, Error>) {
    let outcome = match result {
        Ok(_) => ok,
        Err(Error::EmailTaken) => "email_taken",
        Err(Error::InvalidInput(_)) => "invalid",
        Err(Error::InvalidCredentials) => "invalid_credentials",
        Err(Error::TooManyAttempts { .. }) => "too_many_attempts",
        Err(Error::RefreshTokenReused) => "reused",
        Err(Error::RefreshTokenInvalid) => "invalid",
        Err(Error::SessionEnded) => "session_ended",
        Err(_) => "error",
    };
    family.get_or_create(&vec![("outcome", outcome)]).inc();
}

pub(crate) fn signed_up<T>(result: &Result<T, Error>) {
    count(&SIGN_UPS, "created", result);
}

pub(crate) fn signed_in<T>(result: &Result<T, Error>) {
    count(&SIGN_INS, "ok", result);
}

pub(crate) fn refreshed<T>(result: &Result<T, Error>) {
    count(&REFRESHES, "ok", result);
}
