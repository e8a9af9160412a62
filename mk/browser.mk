# Headless Chromium for the browser tests of the try-it page and the offline API docs.
# Debian's `chromium` package, installed through apt like the other tools here (as root).
# The tests launch it with a fresh profile, no sandbox (root in CI) and background networking off.

TEST_PREREQS += browser-tools

.PHONY: browser-tools

browser-tools: ## chromium (Debian package) for the headless browser tests
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk >/dev/null || { apt-get update -q >/dev/null && \
	      apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk >/dev/null; }; \
	  else echo "browser-tools: 'chromium' is missing; install it (as root: apt-get install chromium)"; exit 1; fi; }
	@command -v chromium >/dev/null 2>&1 || { echo "browser-tools: 'chromium' still missing after apt-get"; exit 1; }
