//! Authentication (who is calling) and authorization (what they may do).

pub mod password;
pub mod rbac;
pub mod secret;
pub mod session;
