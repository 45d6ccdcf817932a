//! `recflow config`: the resolved configuration, with sources, secrets masked.

use crate::commands::Context;

pub fn run(ctx: &Context) -> anyhow::Result<()> {
    let rows = ctx.env.masked();
    if ctx.global.json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(name, value, source, _)| {
                (
                    name.to_string(),
                    serde_json::json!({ "value": value, "source": source }),
                )
            })
            .collect();
        return ctx.print_json(&map);
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (name, value, source, _) in &rows {
        let shown = value.clone().unwrap_or_else(|| "(unset)".into());
        println!("{name:<width$}  {shown}  ({source})");
    }
    if let Some(p) = ctx.env.dotenv_path() {
        println!("\n.env read from {}", p.display());
    }
    Ok(())
}
