//! Sign up, sign in, sign out, change password, and who am I.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::Me;

#[server(prefix = "/rpc", endpoint = "sign_up")]
pub async fn sign_up(
    name: String,
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::server::{auth::session, rpc, service::accounts};
    let next = rpc::safe_next(next);
    let typed_email = email.clone();
    let result = async {
        let state = rpc::state()?;
        let input = accounts::SignUp {
            email,
            password,
            name,
        };
        let user = accounts::sign_up(&state.db, input).await?;
        session::start(&rpc::session().await?, &user).await?;
        Ok(())
    }
    .await;
    rpc::redirect_after_form(&result, &next, |e| {
        let reason = match e {
            AppError::AlreadyExists(_) => "taken",
            _ => "invalid",
        };
        format!(
            "/signup?error={reason}&next={}&email={}",
            rpc::urlencode(&next),
            rpc::urlencode(&typed_email)
        )
    });
    result
}

#[server(prefix = "/rpc", endpoint = "sign_in")]
pub async fn sign_in(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::server::{auth::session, rpc, service::accounts};
    let next = rpc::safe_next(next);
    let result = async {
        let state = rpc::state()?;
        let ip = rpc::client_ip().await;
        let user = accounts::sign_in(&state.db, &email, password, &ip).await?;
        session::start(&rpc::session().await?, &user).await?;
        Ok(())
    }
    .await;
    rpc::redirect_after_form(&result, &next, |e| {
        let reason = match e {
            AppError::RateLimited { .. } => "throttled",
            _ => "credentials",
        };
        format!("/login?error={reason}&next={}", rpc::urlencode(&next))
    });
    result
}

#[server(prefix = "/rpc", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use crate::server::{auth::session, rpc};
    session::end(&rpc::session().await?).await?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    use crate::server::{auth::session, rpc, service::accounts};
    let (state, actor) = rpc::user().await?;
    let user_id = actor.require_user()?;
    let epoch =
        accounts::change_password(&state.db, user_id, current_password, new_password).await?;
    session::renew_epoch(&rpc::session().await?, epoch).await?;
    Ok(())
}

/// The signed-in user and their organizations, or `None` when signed out
/// (pages use it to decide whether to send the visitor to sign in).
#[server(prefix = "/rpc", endpoint = "get_me")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    use crate::server::{
        rpc,
        service::{accounts, orgs},
    };
    let (state, actor) = match rpc::user().await {
        Ok(x) => x,
        Err(AppError::Unauthorized(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let user_id = actor.require_user()?;
    let user = accounts::fetch_user(&state.db, user_id).await?;
    let orgs = orgs::list(&state.db, &actor).await?;
    let last_org = crate::server::auth::session::last_org(&rpc::session().await?).await?;
    Ok(Some(Me {
        user,
        orgs,
        last_org,
    }))
}

/// Organizations that go with the account (its only member) and those
/// that keep it (its only owner, with other members), for the warning
/// before deleting.
#[server(prefix = "/rpc", endpoint = "get_account_deletion")]
pub async fn get_account_deletion() -> Result<(Vec<String>, Vec<String>), AppError> {
    use crate::server::{rpc, service::accounts};
    let (state, actor) = rpc::user().await?;
    let plan = accounts::deletion_plan(&state.db, actor.require_user()?).await?;
    Ok((plan.deleted_with_it, plan.blocking))
}

/// Deletes the signed-in account (password again) and goes to the sign-up
/// page.
#[server(prefix = "/rpc", endpoint = "delete_account")]
pub async fn delete_account(password: String) -> Result<(), AppError> {
    use crate::server::{rpc, service::accounts};
    let (state, actor) = rpc::user().await?;
    accounts::delete_account(&state.db, actor.require_user()?, password).await?;
    let _ = rpc::session().await?.flush().await;
    leptos_axum::redirect("/signup?deleted=1");
    Ok(())
}
