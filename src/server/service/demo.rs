//! "Load the demo project": a project whose batch of 200 products points at
//! the built-in demo shop, with expected values (a few deliberately wrong),
//! so a new team can try everything without preparing data. Eight of the
//! products render by script or behind a button: only the browser agent
//! (with the project's click step) reads them.

use sqlx::PgPool;

use super::batches::{self, UploadMeta};
use super::projects;
use crate::error::AppError;
use crate::model::LoadedDemo;
use crate::server::auth::rbac::{require, OrgCtx, Permission};
use crate::server::db;
use crate::server::demo::{sites_csv_text, DEMO_STEP};

pub const DEMO_ROWS: u32 = 200;

const DESCRIPTION: &str =
    "Products of Mino's built-in demo shop: titles, prices, currencies and stock, in four markup styles.";
const INSTRUCTIONS: &str = "Open the product page and extract:\n\
- title: the product's name as shown\n\
- price: the price as a number, without currency symbol\n\
- currency: the ISO code (USD, EUR, GBP)\n\
- in_stock: yes or no\n";

/// Creates the demo project (named "Demo shop", or "Demo shop 2"… when
/// taken) and its batch. `public_url` is where this Mino serves `/demo`.
pub async fn load(db: &PgPool, ctx: &OrgCtx, public_url: &str) -> Result<LoadedDemo, AppError> {
    require(ctx, Permission::CreateProject)?;
    let mut name = "Demo shop".to_string();
    let mut n = 1;
    let project = loop {
        match projects::create(db, ctx, &name, DESCRIPTION, INSTRUCTIONS).await {
            Ok(p) => break p,
            Err(AppError::AlreadyExists(_)) if n < 100 => {
                n += 1;
                name = format!("Demo shop {n}");
            }
            Err(e) => return Err(e),
        }
    };
    let base = format!("{}/demo", public_url.trim_end_matches('/'));
    let loaded = batches::ingest_text(
        db,
        ctx,
        project.id,
        UploadMeta {
            name: Some(format!("{DEMO_ROWS} demo products")),
            file_name: Some("demo-sites.csv".into()),
            options: Default::default(),
        },
        sites_csv_text(&base, DEMO_ROWS),
    )
    .await;
    let batch = match loaded {
        Ok(b) => b,
        Err(e) => {
            crate::server::db::projects::delete(db, ctx.org_id(), project.id).await?;
            return Err(e);
        }
    };
    // The demo agent service is ready for trying the remote agent: choose
    // "remote" when starting a run.
    db::projects::set_remote_url(db, ctx.org_id(), project.id, &format!("{base}/agent")).await?;
    // A browser run reads the products behind a "Show price" button too.
    let step =
        crate::model::BrowserStep::parse_line(DEMO_STEP).map_err(|e| AppError::internal_bug(&e))?;
    db::projects::set_steps(db, ctx.org_id(), project.id, &[step]).await?;
    // Where this machine has the local model, the llm extractor is one
    // choice away: the route points at it (the extractor stays rules).
    if let Some(local) = super::model_providers::ensure_local(db, ctx).await? {
        let route = [crate::model::RouteEntry {
            provider: local,
            model: crate::server::agents::llm::local::LOCAL_MODEL.into(),
        }];
        db::projects::set_model_route(db, ctx.org_id(), project.id, &route).await?;
    }
    // The first version is the demo's whole set-up, as a run will use it.
    super::versions::restate_latest(db, ctx.org_id(), project.id).await?;
    let project = projects::get(db, ctx.actor(), project.id).await?;
    Ok(LoadedDemo { project, batch })
}
