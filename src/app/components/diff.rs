//! Two instruction versions side by side.

use leptos::prelude::*;

use crate::model::DiffKind;

/// A side-by-side line diff: removed lines red on the left, added green on
/// the right, changed lines paired.
#[component]
pub fn DiffView(diff: crate::model::InstructionDiff) -> impl IntoView {
    // Version 0 is text not saved yet (a suggestion).
    let new = if diff.new_version == 0 {
        "the suggestion".to_string()
    } else {
        format!("v{}", diff.new_version)
    };
    let summary = format!(
        "v{} → {new}: {} added, {} removed",
        diff.old_version, diff.added, diff.removed
    );
    let identical = diff.added == 0 && diff.removed == 0;
    let rows = diff
        .lines
        .into_iter()
        .map(|l| {
            let class = match l.kind {
                DiffKind::Same => "same",
                DiffKind::Added => "added",
                DiffKind::Removed => "removed",
                DiffKind::Changed => "changed",
            };
            let (old_class, new_class) = match l.kind {
                DiffKind::Same => ("", ""),
                DiffKind::Added => ("blank", "add"),
                DiffKind::Removed => ("del", "blank"),
                DiffKind::Changed => ("del", "add"),
            };
            let mark = |side: &str| match (l.kind, side) {
                (DiffKind::Same, _) => " ",
                (_, "old") => "−",
                _ => "+",
            };
            let (old_mark, new_mark) = (mark("old"), mark("new"));
            let (on, ot) = l.old.map(|(n, t)| (n.to_string(), t)).unwrap_or_default();
            let (nn, nt) = l.new.map(|(n, t)| (n.to_string(), t)).unwrap_or_default();
            let has_old = !on.is_empty();
            let has_new = !nn.is_empty();
            view! {
                <tr class=class>
                    <td class="ln">{on}</td>
                    <td class=format!("code {old_class}")>{has_old.then_some(old_mark)}" "{ot}</td>
                    <td class="ln">{nn}</td>
                    <td class=format!("code {new_class}")>{has_new.then_some(new_mark)}" "{nt}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="diff-summary" role="status">{summary} {identical.then_some(" (identical)")}</p>
        <div class="table-wrap">
            <table class="diff" aria-label="Line differences">
                <thead><tr><th scope="col" class="ln">"#"</th><th scope="col">"Old"</th><th scope="col" class="ln">"#"</th><th scope="col">"New"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// Two versions compared in all three parts: the instructions line by
/// line, then the fields whose extraction rule or description changed and
/// the agent settings that changed.
#[component]
pub fn VersionDiffView(diff: crate::model::VersionDiff) -> impl IntoView {
    let fields = (!diff.fields.is_empty()).then(|| {
        let rows = diff
            .fields
            .iter()
            .map(|c| {
                let describe = |r: &crate::model::FieldRunConfig| {
                    let mut s = r.rule.describe();
                    if !r.description.is_empty() {
                        s.push_str(&format!(" — “{}”", r.description));
                    }
                    s
                };
                view! {
                    <tr>
                        <td><strong>{c.field.clone()}</strong></td>
                        <td class="code del">{describe(&c.before)}</td>
                        <td class="code add">{describe(&c.after)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h3>"Field rules"</h3>
            <div class="table-wrap">
                <table class="diff" data-testid="field-rule-diff">
                    <thead><tr><th scope="col">"Field"</th><th scope="col">{format!("v{}", diff.a)}</th><th scope="col">{format!("v{}", diff.b)}</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
    });
    let agent = (!diff.agent.is_empty()).then(|| {
        let shown = |v: &str| if v.is_empty() { "—".to_string() } else { v.to_string() };
        let rows = diff
            .agent
            .iter()
            .map(|c| {
                view! {
                    <tr>
                        <td><strong>{c.setting.replace('_', " ")}</strong></td>
                        <td class="code del">{shown(&c.before)}</td>
                        <td class="code add">{shown(&c.after)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h3>"Agent settings"</h3>
            <div class="table-wrap">
                <table class="diff" data-testid="agent-diff">
                    <thead><tr><th scope="col">"Setting"</th><th scope="col">{format!("v{}", diff.a)}</th><th scope="col">{format!("v{}", diff.b)}</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
    });
    let same_config = diff.fields.is_empty() && diff.agent.is_empty();
    view! {
        <h3>"Instructions"</h3>
        <DiffView diff=diff.instructions.clone() />
        {fields}
        {agent}
        {same_config.then(|| view! { <p class="muted small">"Field rules and agent settings are the same in both versions."</p> })}
    }
}
