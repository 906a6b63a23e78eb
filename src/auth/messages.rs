//! The texts `login` and `logout` print or fail with, worded as skopeo words them (scripts
//! match on them). The library returns data; the CLI prints these.

/// `logout REG` succeeded (stdout).
pub fn removed(key: &str) -> String {
    format!("Removed login credentials for {key}")
}

/// `logout --all` succeeded (stdout).
pub const REMOVED_ALL: &str = "Removed login credentials for all registries";

/// `logout REG` with nothing stored, and `login --get-login REG` with no user (error).
pub fn not_logged_in(key: &str) -> String {
    format!("not logged into {key}")
}

/// `login` succeeded (stdout).
pub const LOGIN_SUCCEEDED: &str = "Login Succeeded!";

/// `login` refused by the registry (error).
pub fn invalid_credentials(key: &str) -> String {
    format!("logging into {key:?}: invalid username/password")
}

/// `login` when the stored entry for the key is an identity token (error).
pub const IDENTITY_TOKEN_PRESENT: &str =
    "currently logged in, auth file contains an Identity token";

/// `login` with existing valid credentials and no new ones given (stdout, two lines).
pub fn authenticating_with_existing(key: &str) -> String {
    format!("Authenticating with existing credentials for {key}")
}

/// Second line after [`authenticating_with_existing`] when they still work.
pub fn already_logged_in(registry: &str) -> String {
    format!("Existing credentials are valid. Already logged in to {registry}")
}

/// `login` when the stored credentials were refused; it then asks for new ones (stdout).
pub const EXISTING_INVALID: &str =
    "Existing credentials are invalid, please enter valid username and password";

/// Argument-count errors, as skopeo spells them.
pub const LOGIN_NO_REGISTRY: &str = "please provide a registry to login to";
pub const LOGIN_TOO_MANY: &str = "login accepts only one registry to login to";
pub const LOGOUT_NO_REGISTRY: &str = "please provide a registry to logout from";
pub const LOGOUT_TOO_MANY: &str = "logout accepts only one registry to logout from";
pub const LOGOUT_ALL_WITH_ARGS: &str = "--all takes no arguments";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_interpolate_the_key() {
        assert_eq!(
            removed("r.example/ns"),
            "Removed login credentials for r.example/ns"
        );
        assert_eq!(not_logged_in("r.example"), "not logged into r.example");
        assert_eq!(
            invalid_credentials("r.example"),
            "logging into \"r.example\": invalid username/password"
        );
    }
}
