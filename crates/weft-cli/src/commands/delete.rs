//! `weft delete KIND NAME [-m MESH]`.

use weft_api::Kind;

use crate::{cli::DeleteArgs, commands::resource_path};

pub async fn run(args: DeleteArgs) -> anyhow::Result<()> {
    let kind: Kind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let client = args.cp.client()?;
    client
        .delete(&resource_path(kind, &args.mesh, &args.name))
        .await?;
    if kind.is_mesh_scoped() {
        println!(
            "{} {}/{} deleted",
            kind.as_str().to_lowercase(),
            args.mesh,
            args.name
        );
    } else {
        println!("{} {} deleted", kind.as_str().to_lowercase(), args.name);
    }
    Ok(())
}
