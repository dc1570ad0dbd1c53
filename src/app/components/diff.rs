//! Two instruction versions side by side.

use leptos::prelude::*;

use crate::model::DiffKind;

/// A side-by-side line diff: removed lines red on the left, added green on
/// the right, changed lines paired.
#[component]
pub fn DiffView(diff: crate::model::InstructionDiff) -> impl IntoView {
    let summary = format!(
        "v{} → v{}: {} added, {} removed",
        diff.old_version, diff.new_version, diff.added, diff.removed
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
