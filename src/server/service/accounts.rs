//! Sign up, sign in (with throttling), change password.

use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, Change};
use super::{collect_fields, parse_email, parse_name};
use crate::error::AppError;
use crate::model::User;
use crate::server::auth::password::{self, Password};
use crate::server::auth::rbac::Actor;
use crate::server::db::{self, users::UserRow};

/// Failed sign-ins counted over this window.
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;
/// Failures per account in the window before further tries are refused.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failures per client address in the window (several accounts behind one
/// office NAT still get some room).
pub const MAX_FAILURES_PER_IP: i64 = 30;

const BAD_CREDENTIALS: &str = "The email or password is incorrect.";

pub struct SignUp {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// Creates an account (email checked, password hashed) and records it.
pub async fn sign_up(db: &PgPool, input: SignUp) -> Result<UserRow, AppError> {
    let email = parse_email(&input.email, "email");
    let name = parse_name(&input.name, "name");
    let pw = Password::parse(input.password, "password");
    collect_fields([
        email.as_ref().map(|_| ()).map_err(Clone::clone),
        name.as_ref().map(|_| ()).map_err(Clone::clone),
        pw.as_ref().map(|_| ()).map_err(|e| e.clone()),
    ])?;
    let (email, name, pw) = (email?, name?, pw?);

    let hash = password::hash(pw).await?;
    let mut tx = db.begin().await?;
    match db::users::insert_user(&mut *tx, &email, &name, &hash).await {
        Ok(user) => {
            audit::record_for_account(
                &mut *tx,
                &Actor::User { id: user.id },
                Change::new("account.sign_up", "user", user.id)
                    .after(serde_json::json!({"email": email, "name": name})),
            )
            .await?;
            tx.commit().await?;
            Ok(user)
        }
        Err(e) if db::unique_violation(&e).as_deref() == Some("users_email_key") => {
            Err(AppError::AlreadyExists(crate::error::FieldError::new(
                "email",
                "An account with this email already exists. Sign in instead.",
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks the credentials. Unknown email and wrong password give the same
/// answer after the same work (a dummy hash is verified for unknown emails).
pub async fn sign_in(
    db: &PgPool,
    email: &str,
    password: String,
    client_ip: &str,
) -> Result<UserRow, AppError> {
    // Postgres text can't hold NUL, and no stored email has a control
    // character: such an address can't match, so it isn't looked up (the
    // dummy hash below still costs the same time).
    let plausible = !email.chars().any(char::is_control);
    let account: String = email
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let (by_account, by_ip, account_wait, ip_wait) =
        db::auth_failures::count_recent(db, &account, client_ip, THROTTLE_WINDOW_SECS).await?;
    let wait = if by_account >= MAX_FAILURES_PER_ACCOUNT {
        account_wait
    } else if by_ip >= MAX_FAILURES_PER_IP {
        ip_wait
    } else {
        None
    };
    if let Some(secs) = wait {
        return Err(AppError::RateLimited {
            retry_after_secs: secs.ceil().max(1.0) as u64,
        });
    }

    let user = if plausible {
        db::users::fetch_by_email(db, &account).await?
    } else {
        None
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if password::verify(password, stored).await? {
        db::auth_failures::delete_for_account(db, &account).await?;
        // `verify` is true only for an existing user.
        user.ok_or_else(|| AppError::Unauthorized(BAD_CREDENTIALS.into()))
    } else {
        db::auth_failures::insert_failure(db, &account, client_ip).await?;
        db::auth_failures::delete_older_than(db, THROTTLE_WINDOW_SECS * 4).await?;
        Err(AppError::Unauthorized(BAD_CREDENTIALS.into()))
    }
}

/// Returns the new session epoch: every other session of the user ends.
pub async fn change_password(
    db: &PgPool,
    user_id: Uuid,
    current: String,
    new: String,
) -> Result<i32, AppError> {
    let user = db::users::fetch_by_id(db, user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Sign in to continue.".into()))?;
    let new = Password::parse(new, "new_password")?;
    if !password::verify(current, Some(user.password_hash)).await? {
        return Err(AppError::field(
            "current_password",
            "That is not your current password.",
        ));
    }
    let hash = password::hash(new).await?;
    let mut tx = db.begin().await?;
    let epoch = db::users::update_password(&mut *tx, user_id, &hash).await?;
    audit::record_for_account(
        &mut *tx,
        &Actor::User { id: user_id },
        Change::new("account.change_password", "user", user_id),
    )
    .await?;
    tx.commit().await?;
    Ok(epoch)
}

/// The signed-in person as the API shows them.
pub async fn fetch_user(db: &PgPool, user_id: Uuid) -> Result<User, AppError> {
    db::users::fetch_by_id(db, user_id)
        .await?
        .map(User::from)
        .ok_or_else(|| AppError::Unauthorized("Sign in to continue.".into()))
}

/// What deleting an account would do: the organizations deleted with it
/// (it is their only member) and, if any, those that keep it from going
/// (it is their only owner and they have other members).
pub struct AccountDeletion {
    pub deleted_with_it: Vec<String>,
    pub blocking: Vec<String>,
}

pub async fn deletion_plan(db: &PgPool, user_id: Uuid) -> Result<AccountDeletion, AppError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select o.name, (select count(*) from memberships c where c.org_id = o.id)
         from memberships m join organizations o on o.id = m.org_id
         where m.user_id = $1 and m.role = 'owner'
           and not exists (select 1 from memberships x
                           where x.org_id = o.id and x.role = 'owner' and x.user_id <> $1)
         order by lower(o.name)",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    let (alone, shared): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, n)| *n <= 1);
    Ok(AccountDeletion {
        deleted_with_it: alone.into_iter().map(|(n, _)| n).collect(),
        blocking: shared.into_iter().map(|(n, _)| n).collect(),
    })
}

/// Deletes the account after checking its password: refused while it is
/// the only owner of an organization with other members; organizations
/// where it is the only member go with it; the API keys it created are
/// revoked; its sessions end (they name a user that no longer exists);
/// audit entries it made stay, signed "deleted user".
pub async fn delete_account(db: &PgPool, user_id: Uuid, password: String) -> Result<(), AppError> {
    let user = db::users::fetch_by_id(db, user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Sign in to continue.".into()))?;
    if !password::verify(password, Some(user.password_hash)).await? {
        return Err(AppError::field("password", "That is not your password."));
    }
    let plan = deletion_plan(db, user_id).await?;
    if !plan.blocking.is_empty() {
        return Err(AppError::Conflict(format!(
            "You are the only owner of {}, which {} other members. Make one of them an owner (Team page), or delete the organization, first.",
            plan.blocking.join(", "),
            if plan.blocking.len() == 1 { "has" } else { "have" }
        )));
    }
    let mut tx = db.begin().await?;
    // Organizations it alone belongs to.
    sqlx::query(
        "delete from organizations o
         where exists (select 1 from memberships m where m.org_id = o.id and m.user_id = $1)
           and not exists (select 1 from memberships m where m.org_id = o.id and m.user_id <> $1)",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update api_keys set revoked_at = now() where created_by = $1 and revoked_at is null",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    audit::record_for_account(
        &mut *tx,
        &Actor::User { id: user_id },
        Change::new("account.delete", "user", user_id),
    )
    .await?;
    sqlx::query(
        "update audit_log set actor_user_id = null, actor_name = 'deleted user'
         where actor_user_id = $1",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from users where id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
