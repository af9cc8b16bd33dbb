//! demo (stub)
use crate::cli::{DemoArgs, GlobalArgs};
use crate::ctx::Ctx;
use crate::report::{Details, Report, Section};
use anyhow::Result;
use serde::Serialize;
pub struct Config;
impl Config {
    pub fn new(_a: &DemoArgs, _g: &GlobalArgs) -> Config {
        Config
    }
}
#[derive(Serialize)]
pub struct DemoDetails {}
impl Details for DemoDetails {
    fn sections(&self) -> Vec<Section> {
        vec![]
    }
}
pub async fn run(_cfg: Config, ctx: &Ctx) -> Result<Report<DemoDetails>> {
    Ok(Report::new(
        "demo",
        ctx.manifest(),
        vec![],
        vec![],
        DemoDetails {},
    ))
}
