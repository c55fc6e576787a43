//! `clusterlab matrix`: one scenario over many versions and topologies.

use crate::cluster::Ctx;
use crate::error::Result;

#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    pub file: std::path::PathBuf,
}

pub fn run(_ctx: &Ctx, _args: &MatrixArgs) -> Result<i32> {
    Err(crate::error::Error::usage("matrix is not built yet", "see issue #4"))
}
