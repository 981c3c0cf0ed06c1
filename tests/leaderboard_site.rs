//! The static leaderboard site in a real headless Chromium: the table
//! renders, sorting and filtering change the visible rows, the drill-down
//! shows per-document results, and markup or script in a manifest, a run or
//! a prompt is shown as text and never runs.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/fixture_runs.rs"]
mod fixture_runs;

use std::path::{Path, PathBuf};

use browser::Browser;
use fixture_runs::{build, write_run, write_run_edited, SUITE};

const IMG: &str = r#"<img src=x onerror="window.__pwned=1">"#;
const SCRIPT: &str = "<script>window.__pwned=2</script>";
const NAME: &str = "<script>window.__pwned=3</script>";

/// Three variants: `orig` (an original whose display name and notes carry
/// payloads), `quant` (its quantization, worse on t1), and a run filed under
/// a name that is itself a payload, with no manifest.
fn site(dir: &Path) -> PathBuf {
    let results = dir.join("results");
    let suite = dir.join("suite.yaml");
    std::fs::write(&suite, SUITE).unwrap();
    write_run(
        &results,
        "orig",
        "r1",
        "2026-02-01T00:00:00Z",
        [(0.75, 0.1), (0.5, 0.1)],
        [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]],
    );
    write_run(
        &results,
        "quant",
        "r1",
        "2026-02-02T00:00:00Z",
        [(0.5, 0.1), (0.5, 0.1)],
        [[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]],
    );
    // Filed in a plain folder, but the run names the variant with markup.
    write_run_edited(
        &results,
        "payload",
        "r1",
        "2026-02-03T00:00:00Z",
        [(0.25, 0.05), (0.0, 0.01)],
        [[0.0; 4]; 2],
        |run| run.assay.variant = Some(NAME.to_string()),
    );

    let variants = dir.join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    std::fs::write(
        variants.join("orig.toml"),
        format!(
            "name = \"orig\"\ndisplay_name = {}\nrelation = \"original\"\nparameters = 270000000\n\
             precision = \"bf16\"\nbits_per_weight = 16.0\nnotes = {}\n[backend]\nspec = \"llama:o.gguf\"\n",
            quote(IMG),
            quote(SCRIPT)
        ),
    )
    .unwrap();
    std::fs::write(
        variants.join("quant.toml"),
        format!(
            "name = \"quant\"\nbase = \"orig\"\nrelation = \"quantization\"\nparameters = 270000000\n\
             precision = \"Q2_K\"\nbits_per_weight = 3.2\ncontributor = {}\n[backend]\nspec = \"llama:q.gguf\"\n",
            quote(IMG)
        ),
    )
    .unwrap();
    let out = dir.join("site");
    build(&results, &variants, &suite, &out).unwrap();
    out
}

fn assert_nothing_ran(browser: &mut Browser) {
    assert_eq!(
        browser.eval("typeof window.__pwned"),
        "undefined",
        "a payload ran"
    );
    assert!(
        browser.incidents.is_empty(),
        "dialogs or errors: {:?}",
        browser.incidents
    );
}

#[test]
fn the_table_sorts_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let out = site(dir.path());
    let mut browser = Browser::start();
    browser.open(&out.join("index.html"));
    // Best first: orig (avg 0.583), quant (0.417), the payload run (0).
    assert_eq!(browser.visible_rows("#board", 2)[..2], ["orig", "quant"]);
    assert_eq!(browser.visible_rows("#board", 2).len(), 3);
    assert_eq!(browser.visible_rows("#board", 2)[2], NAME);

    // The average column: first click best first, second click reversed.
    browser.click("#board thead th:nth-child(9)");
    assert_eq!(browser.visible_rows("#board", 2), ["orig", "quant", NAME]);
    browser.click("#board thead th:nth-child(9)");
    assert_eq!(browser.visible_rows("#board", 2), [NAME, "quant", "orig"]);
    // A text column sorts by name; its header says so.
    browser.click("#board thead th:nth-child(3)");
    assert_eq!(browser.visible_rows("#board", 2), [NAME, "orig", "quant"]);
    assert_eq!(
        browser.eval(
            "document.querySelector('#board thead th:nth-child(3)').getAttribute('aria-sort')"
        ),
        "ascending"
    );
    // Bits per weight, highest first.
    browser.click("#board thead th:nth-child(8)");
    assert_eq!(browser.visible_rows("#board", 2), ["orig", "quant", NAME]);

    // Search.
    browser.type_into("#q", "quan");
    assert_eq!(browser.visible_rows("#board", 2), ["quant"]);
    assert_eq!(
        browser.eval("document.querySelector('#shown').textContent"),
        "1 of 3"
    );
    browser.type_into("#q", "");
    assert_eq!(browser.visible_rows("#board", 2).len(), 3);
    // Filters by relation, base and precision.
    browser.choose("#relation", "original");
    assert_eq!(browser.visible_rows("#board", 2), ["orig"]);
    browser.choose("#relation", "");
    browser.choose("#base", "orig");
    assert_eq!(browser.visible_rows("#board", 2), ["quant"]);
    browser.choose("#base", "");
    browser.choose("#precision", "bf16");
    assert_eq!(browser.visible_rows("#board", 2), ["orig"]);

    // The view is in the address: opening it again shows the same rows.
    let hash = browser.eval("location.hash");
    assert!(hash.as_str().unwrap().contains("precision=bf16"), "{hash}");
    // A mark on the old page tells when the new one has replaced it.
    browser.eval("window.__before_reload = true; location.reload()");
    browser.wait_for(
        "window.__before_reload === undefined && document.readyState === 'complete' \
         && document.querySelector('#shown')",
    );
    assert_eq!(browser.visible_rows("#board", 2), ["orig"]);
    assert_nothing_ran(&mut browser);
}

/// Picks a task and a filter in the drill-down and waits until it shows them.
fn show(browser: &mut Browser, task: &str, how: &str) {
    browser.choose("#doc-task", task);
    browser.choose("#doc-filter", how);
    browser.wait_for(&format!(
        "document.querySelector('#doc-table').dataset.view === '{task}|{how}|'"
    ));
}

#[test]
fn variant_pages_drill_down_to_documents() {
    let dir = tempfile::tempdir().unwrap();
    let out = site(dir.path());
    let mut browser = Browser::start();
    browser.open(&out.join("index.html"));
    // The link from the table leads to the variant's page.
    browser.click("#board tbody tr:nth-child(2) td:nth-child(3) a");
    browser.wait_for(
        "location.href.endsWith('variants/quant.html') && document.readyState === 'complete'",
    );
    let text = browser.eval("document.body.innerText");
    let text = text.as_str().unwrap();
    assert!(
        text.contains("quantization") && text.contains("Q2_K"),
        "{text}"
    );

    browser.click("#doc-load");
    browser.wait_for("!document.querySelector('#doc-table').hidden");
    // t1 first: four documents, values 1, 0, 1, 0; the base had 1, 1, 1, 0.
    assert_eq!(browser.visible_rows("#doc-table", 0), ["0", "1", "2", "3"]);
    assert_eq!(
        browser.visible_rows("#doc-table", 4),
        ["yes", "no", "yes", "no"]
    );
    assert_eq!(
        browser.visible_rows("#doc-table", 5),
        ["yes", "yes", "yes", "no"]
    );
    // The prompt, and the chosen option's text as the response.
    let prompts = browser.visible_rows("#doc-table", 1);
    assert_eq!(
        prompts[1],
        "Question 0.1? <img src=x onerror=window.__pwned=4>"
    );
    assert_eq!(
        browser.visible_rows("#doc-table", 3),
        ["yes", "no", "yes", "no"]
    );
    assert_eq!(browser.visible_rows("#doc-table", 2), ["yes"; 4]);
    show(&mut browser, "t1", "wrong");
    assert_eq!(browser.visible_rows("#doc-table", 0), ["1", "3"]);
    show(&mut browser, "t1", "changed");
    assert_eq!(browser.visible_rows("#doc-table", 0), ["1"]);
    show(&mut browser, "t2", "all");
    assert_eq!(
        browser.visible_rows("#doc-table", 4),
        ["yes", "no", "no", "yes"]
    );
    assert_nothing_ran(&mut browser);
}

#[test]
fn markup_in_manifests_runs_and_prompts_is_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = site(dir.path());
    let mut browser = Browser::start();
    browser.open(&out.join("index.html"));
    let text = browser.eval("document.body.innerText");
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains(IMG) && text.contains(NAME), "{text}");
    assert_eq!(browser.eval("document.querySelectorAll('img').length"), 0);
    browser.type_into("#q", "<script>window.__pwned=3");
    assert_eq!(browser.visible_rows("#board", 2), [NAME]);
    assert_nothing_ran(&mut browser);

    // Every page, with its documents open.
    let pages: Vec<PathBuf> = std::fs::read_dir(out.join("variants"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pages.len(), 3);
    for page in pages {
        browser.open(&page);
        browser.click("#doc-load");
        browser.wait_for("!document.querySelector('#doc-table').hidden");
        assert_eq!(
            browser.eval("document.querySelectorAll('img, main script').length"),
            0
        );
        assert_nothing_ran(&mut browser);
    }
    browser.open(&out.join("variants/orig.html"));
    let text = browser.eval("document.body.innerText");
    assert!(text.as_str().unwrap().contains(SCRIPT), "{text}");
}

#[test]
fn a_link_to_a_document_opens_it() {
    // The fixture numbers documents across tasks: t2's are 4 to 7.
    let dir = tempfile::tempdir().unwrap();
    let out = site(dir.path());
    let mut browser = Browser::start();
    let page = out.join("variants/quant.html").canonicalize().unwrap();
    browser.call(
        "Page.navigate",
        serde_json::json!({"url": format!("file://{}#doc-t2-7", page.display())}),
    );
    browser.wait_for("document.querySelector('tr.target') !== null");
    assert_eq!(
        browser.eval("document.querySelector('tr.target').id"),
        "doc-t2-7"
    );
    assert_eq!(
        browser.eval("document.querySelector('#doc-task').value"),
        "t2"
    );
    assert_nothing_ran(&mut browser);
}
