"""Drives the listing page of a running `serv --upload` in headless Chromium, as a phone
(390x844) and as a desktop (1280x800) would show it.

    python listing.py BASE_URL DOWNLOAD_DIR UPLOAD_FILE SCREENSHOT_DIR

The served tree holds fw.img (2 MiB), small.txt, sub/, a FIFO named pipe, a dangling
symlink named dangling, and fw-1.2.3.img and rpi4-bootloader-update-2026-11-30.bin (long
names that differ only near their ends). Prints one line per check; any failure raises.
"""

import hashlib
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

base, downloads, upload_file, shots = sys.argv[1:5]


def browser(width, height):
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {
        "download.default_directory": downloads,
        "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    # The window size sets the outer window; make the page itself that wide.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500,
    })
    if width < 500:
        # A phone's touch screen: a coarse pointer, no mouse to drag files with.
        driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {
            "enabled": True, "maxTouchPoints": 5})
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {
        "behavior": "allow", "downloadPath": downloads,
    })
    return driver


def check(what, ok, detail=""):
    if not ok:
        raise AssertionError(f"{what}: {detail}")
    print("ok", what)


def names(driver):
    # Read in one script run: the page may change rows meanwhile (a delete removes its
    # row), and elements found first and read one by one can be gone by then.
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('li > * > :first-child'))"
        ".map(e => e.innerText.trim())")


for width, height, label in ((390, 844, "phone"), (1280, 800, "desktop")):
    driver = browser(width, height)
    try:
        driver.get(base + "/")
        sizes = driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        check(f"{label}: no sideways scrolling", sizes[0] <= sizes[1], sizes)

        short = driver.execute_script("""
            const out = [];
            for (const e of document.querySelectorAll('li > a, .head button, nav a, li > button, #up button')) {
                const r = e.getBoundingClientRect();
                if (r.height < 44 || (e.matches('li > a + button') && r.width < 44))
                    out.push(e.textContent + ' ' + r.width + 'x' + r.height);
            }
            return out;""")
        check(f"{label}: tap targets at least 44 px", not short, short)

        wrapped = driver.execute_script("""
            const out = [];
            for (const e of document.querySelectorAll('li > * > * + *')) {
                if (e.getClientRects().length > 1 || e.getBoundingClientRect().height > 30)
                    out.push(e.textContent);
            }
            return out;""")
        check(f"{label}: sizes and times stay on one line", not wrapped, wrapped)

        # Whole names: every name's text fits inside its box and inside the screen.
        cut = driver.execute_script("""
            const out = [];
            for (const e of document.querySelectorAll('li > * > :first-child')) {
                const r = e.getBoundingClientRect();
                if (e.scrollWidth > e.clientWidth + 1 || r.right > innerWidth + 1)
                    out.push(e.textContent);
            }
            return out;""")
        check(f"{label}: whole names are shown", not cut, cut)
        listed = names(driver)
        check(f"{label}: the long names read whole",
              "rpi4-bootloader-update-2026-11-30.bin" in listed and "fw-1.2.3.img" in listed,
              listed)

        form = driver.execute_script("""
            const f = document.getElementById('up');
            const r = f.getBoundingClientRect();
            const drop = f.querySelector('.drop');
            return [r.bottom <= innerHeight, drop.offsetParent !== null];""")
        check(f"{label}: the upload form is on the first screen", form[0], form)
        check(f"{label}: 'drop' is said only where dragging works",
              form[1] == (label == "desktop"), form)

        links = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a")]
        check(f"{label}: special files are not links",
              "pipe" not in links and "dangling" not in links, links)
        listed = names(driver)
        check(f"{label}: directories first, then names",
              listed[:2] == ["../", "sub/"] if "../" in listed else listed[0] == "sub/", listed)

        driver.save_screenshot(os.path.join(shots, f"listing-{label}.png"))

        # Dark when the system is.
        def background():
            rgb = driver.execute_script(
                "return getComputedStyle(document.body).backgroundColor")
            return sum(int(v) for v in rgb[rgb.index("(") + 1:-1].split(",")[:3])
        light = background()
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        dark = background()
        check(f"{label}: dark mode follows the system", light > 600 and dark < 150, (light, dark))
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "light"}]})

        # Sorting by size: smallest first, then the other way round.
        def size_button():
            return driver.find_element(By.XPATH, "//button[starts-with(normalize-space(.), 'Size')]")

        def sorted_by_size(want):
            deadline = time.time() + 10
            while time.time() < deadline:
                order = [n for n in names(driver) if n in ("fw.img", "small.txt")]
                if order == want:
                    break
                time.sleep(0.1)
            return order
        size_button().click()
        order = sorted_by_size(["small.txt", "fw.img"])
        check(f"{label}: sort by size", order == ["small.txt", "fw.img"], order)
        size_button().click()
        order = sorted_by_size(["fw.img", "small.txt"])
        check(f"{label}: sort by size, largest first", order == ["fw.img", "small.txt"], order)

        # A tap on SHA shows the file's checksum under its row.
        driver.find_element(By.CSS_SELECTOR, "button[data-f=\"small.txt\"]").click()
        deadline = time.time() + 10
        shown = ""
        while time.time() < deadline and not shown:
            sums = driver.find_elements(By.CSS_SELECTOR, "li.sum")
            shown = sums[0].text if sums else ""
            time.sleep(0.05)
        check(f"{label}: SHA shows the checksum",
              shown == "SHA-256 " + hashlib.sha256(b"boot log\n").hexdigest(), shown)

        if label == "phone":
            # A tap on a file downloads it.
            driver.get(base + "/")
            driver.find_element(By.CSS_SELECTOR, "li > a[href=\"fw.img\"]").click()
            target = os.path.join(downloads, "fw.img")
            deadline = time.time() + 20
            while time.time() < deadline and (
                    not os.path.exists(target) or os.path.getsize(target) != 2 * 1024 * 1024):
                time.sleep(0.1)
            check("a tap downloads the file",
                  os.path.exists(target) and os.path.getsize(target) == 2 * 1024 * 1024)

            # The form uploads a file, and the page says what was stored.
            driver.get(base + "/sub/")
            driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(upload_file)
            driver.find_element(By.CSS_SELECTOR, "#up button").click()
            deadline = time.time() + 20
            while time.time() < deadline and "stored" not in driver.page_source:
                time.sleep(0.1)
            check("the form uploads", "stored /sub/" in driver.page_source, driver.page_source)
            driver.find_element(By.LINK_TEXT, "Back to the listing").click()
            check("the upload is listed",
                  os.path.basename(upload_file) in names(driver), names(driver))
        else:
            # A row's delete button asks first, then the file and its row are gone.
            driver.get(base + "/")
            driver.find_element(By.CSS_SELECTOR, "button[data-d=\"small.txt\"]").click()
            asked = driver.switch_to.alert.text
            driver.switch_to.alert.accept()
            deadline = time.time() + 10
            while time.time() < deadline and "small.txt" in names(driver):
                time.sleep(0.05)
            check("delete asks, then removes the row",
                  asked == "Delete small.txt?" and "small.txt" not in names(driver),
                  (asked, names(driver)))
            driver.get(base + "/")
            check("the deleted file is gone from a fresh listing",
                  "small.txt" not in names(driver), names(driver))
    finally:
        driver.quit()
