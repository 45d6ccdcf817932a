//! `recflow config`: the environment-level configuration, with sources, secrets masked.

use crate::commands::Context;
use crate::output::{terminal_width, Table};

pub fn run(ctx: &Context) -> anyhow::Result<()> {
    let rows = ctx.env.masked();
    if ctx.out.is_json() {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(name, value, source, _)| {
                (
                    name.to_string(),
                    serde_json::json!({ "value": value, "source": source }),
                )
            })
            .collect();
        return Ok(ctx.out.json(&map)?);
    }
    let mut t = Table::new(["variable", "value", "source"]).keep([0]);
    for (name, value, source, _) in &rows {
        t.push([
            name.to_string(),
            value.clone().unwrap_or_else(|| "(unset)".into()),
            format!("({source})"),
        ]);
    }
    ctx.out.table(&t, terminal_width())?;
    if let Some(p) = ctx.env.dotenv_path() {
        ctx.out.line(format!("\n.env read from {}", p.display()))?;
    }
    Ok(())
}
