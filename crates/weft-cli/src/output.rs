//! Rendering resources for people (aligned tables) and for tools (YAML, JSON).

pub mod table;

use serde_json::Value;

use crate::cli::OutputFormat;

/// Prints values as YAML documents or JSON; `None` means the caller renders a table.
pub fn print_structured(
    format: OutputFormat,
    values: &[Value],
    single: bool,
) -> anyhow::Result<Option<()>> {
    match format {
        OutputFormat::Table => Ok(None),
        OutputFormat::Json => {
            let text = if single && values.len() == 1 {
                serde_json::to_string_pretty(&values[0])?
            } else {
                serde_json::to_string_pretty(values)?
            };
            println!("{text}");
            Ok(Some(()))
        }
        OutputFormat::Yaml => {
            let docs = values
                .iter()
                .map(serde_yaml_ng::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            print!("{}", docs.join("---\n"));
            Ok(Some(()))
        }
    }
}
