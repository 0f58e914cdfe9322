#!/usr/bin/env bash
# Re-create vendor/ (the JavaScript the static book loads instead of any CDN, and axe-core, the accessibility
# engine tests/test_browser.py injects into every page) from the npm registry,
# and write vendor/VERSIONS: one line per file with its package, licence and sha256.
# The committed files are what the book uses; tests/test_vendor.py checks them against VERSIONS.
# Usage: tools/vendor_js.sh   (needs npm; writes only under vendor/)
set -euo pipefail
cd "$(dirname "$0")/.."
HM=@jupyter-widgets/html-manager@1.0.15 RQ=requirejs@2.3.8 MJ=mathjax@3.2.2 AX=axe-core@4.14.1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$HM" "$RQ" "$MJ" "$AX" >/dev/null)
for t in "$tmp"/*.tgz; do mkdir -p "${t%.tgz}" && tar xzf "$t" -C "${t%.tgz}"; done
hm="$tmp/jupyter-widgets-html-manager-1.0.15/package" rq="$tmp/requirejs-2.3.8/package" mj="$tmp/mathjax-3.2.2/package/es5"

# Widgets: html-manager's AMD bundle + the fonts a modern browser asks for (woff2/woff), require.js.
w=vendor/widgets; mkdir -p "$w"; rm -f "$w"/embed-amd.js "$w"/require.js "$w"/*.woff "$w"/*.woff2   # keeps widgets-offline.js and the LICENSE files (ours)
cp "$hm"/dist/embed-amd.js "$hm"/dist/*.woff2 "$hm"/dist/*.woff "$w"/
cp "$hm"/dist/embed.js.LICENSE.txt "$w"/THIRD-PARTY-NOTICES.txt
cp "$rq"/require.js "$w"/

# MathJax 3 (Sphinx's default loads it from a CDN): the combined component, CHTML fonts, TeX extensions
# loaded on demand by autoload, and the menu/accessibility components it may load.
m=vendor/mathjax; rm -rf "$m"; mkdir -p "$m"/output/chtml/fonts "$m"/input/tex
cp "$mj"/tex-mml-chtml.js "$m"/
cp -r "$mj"/output/chtml/fonts/woff-v2 "$m"/output/chtml/fonts/
cp -r "$mj"/input/tex/extensions "$m"/input/tex/
cp -r "$mj"/ui "$mj"/a11y "$m"/
cp "$tmp"/mathjax-3.2.2/package/LICENSE "$m"/LICENSE-mathjax.txt

# axe-core (tests only: tools/sphinx/filterbook_sphinx.py keeps it out of the built book): the minified engine.
a=vendor/axe; rm -rf "$a"; mkdir -p "$a"
cp "$tmp"/axe-core-4.14.1/package/axe.min.js "$a"/
cp "$tmp"/axe-core-4.14.1/package/LICENSE "$a"/LICENSE-axe-core.txt

{
  echo "# Vendored JavaScript served by the static book (no CDN), and axe-core for tests/test_browser.py. Written by tools/vendor_js.sh."
  for t in "$tmp"/*.tgz; do echo "# tarball $(basename "$t") sha256 $(sha256sum "$t" | cut -d' ' -f1)"; done
  echo "# path (relative to vendor/)  package@version  license  sha256"
  (cd vendor && find widgets mathjax axe -type f ! -name '*.txt' | LC_ALL=C sort | while read -r f; do
    case "$f" in
      widgets/require.js) pkg="$RQ MIT" ;;
      widgets/widgets-offline.js) pkg="filterbook MIT" ;;
      widgets/*) pkg="$HM BSD-3-Clause" ;;
      mathjax/*) pkg="$MJ Apache-2.0" ;;
      axe/*) pkg="$AX MPL-2.0" ;;
    esac
    echo "$f $pkg $(sha256sum "$f" | cut -d' ' -f1)"
  done)
} > vendor/VERSIONS
echo "vendor/ refreshed: $(grep -vc '^#' vendor/VERSIONS) files"
