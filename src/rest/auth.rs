//! `/api/v1/auth`: sign up, sign in and out (a session cookie), who is
//! calling (`/me`, a person or an API key), and changing one's password.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::AppError;
use crate::model::{Me, User};
use crate::server::auth::{rbac::Actor, session};
use crate::server::http::{Caller, ClientIp, Json};
use crate::server::service::{accounts, orgs};
use crate::server::state::AppState;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SignUpBody {
    email: String,
    password: String,
    name: String,
}

pub async fn sign_up(
    State(state): State<AppState>,
    session: Session,
    Json(body): Json<SignUpBody>,
) -> Result<(StatusCode, Json<User>), AppError> {
    let user = accounts::sign_up(
        &state.db,
        accounts::SignUp {
            email: body.email,
            password: body.password,
            name: body.name,
        },
    )
    .await?;
    session::start(&session, &user).await?;
    Ok((StatusCode::CREATED, Json(User::from(user))))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct SignInBody {
    email: String,
    password: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Json(body): Json<SignInBody>,
) -> Result<Json<User>, AppError> {
    let user = accounts::sign_in(&state.db, &body.email, body.password, &ip).await?;
    session::start(&session, &user).await?;
    Ok(Json(User::from(user)))
}

pub async fn sign_out(session: Session) -> Result<StatusCode, AppError> {
    session::end(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user and their organizations; for an API key, its
/// organization and the key's identity.
pub async fn me(
    State(state): State<AppState>,
    session: Session,
    Caller(actor): Caller,
) -> Result<Json<serde_json::Value>, AppError> {
    let orgs = orgs::list(&state.db, &actor).await?;
    match &actor {
        Actor::User { id } => {
            let user = accounts::fetch_user(&state.db, *id).await?;
            let last_org = session::last_org(&session).await?;
            let me = Me {
                user,
                orgs,
                last_org,
            };
            Ok(Json(serde_json::to_value(me).unwrap_or_default()))
        }
        Actor::ApiKey { id, scopes, .. } => Ok(Json(serde_json::json!({
            "api_key": { "id": id, "scopes": scopes },
            "orgs": orgs,
        }))),
        // Requests are made by people and keys, never by Mino itself.
        Actor::System => Err(AppError::Unauthorized("Sign in or send an API key.".into())),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    Caller(actor): Caller,
    Json(body): Json<ChangePasswordBody>,
) -> Result<StatusCode, AppError> {
    let user_id = actor.require_user()?;
    let epoch =
        accounts::change_password(&state.db, user_id, body.current_password, body.new_password)
            .await?;
    session::renew_epoch(&session, epoch).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct DeleteAccountBody {
    /// The account's password, again.
    password: String,
}

/// `DELETE /me {password}`: deletes the caller's account (people only).
pub async fn delete_me(
    State(state): State<AppState>,
    session: Session,
    Caller(actor): Caller,
    Json(body): Json<DeleteAccountBody>,
) -> Result<StatusCode, AppError> {
    let user_id = actor.require_user()?;
    accounts::delete_account(&state.db, user_id, body.password).await?;
    let _ = session.flush().await;
    Ok(StatusCode::NO_CONTENT)
}
