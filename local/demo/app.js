/* Ridgeline Outfitters demo page: personalizes itself from the visitor's Audience Manager segments.
 *
 * Flow: /_local/visitor (what VisitorAPI.js does: an ECID in the AMCV cookie) -> GET /ids -> GET /segments;
 * each product view or "add to cart" sends POST /signals, then GET /segments?refresh=true, and the hero
 * banner and the "recommended" strip follow the segments. The API reads the visitor from the cookie.
 * Segment IDs are the DCS simulator's demo segments (local/dcs_simulator/rules.toml).
 */
(function () {
  "use strict";

  var PRODUCTS = [
    { sku: "tent-summit-2", name: "Summit 2 Backpacking Tent", category: "tents", price: 249, rating: 4.8, reviews: 412,
      colors: [{ id: "sand", hex: "#c9a66b" }, { id: "blue", hex: "#2f6fb3" }], badge: "Bestseller" },
    { sku: "tent-basecamp-4", name: "Basecamp 4 Family Tent", category: "tents", price: 389, rating: 4.6, reviews: 198,
      colors: [{ id: "forest", hex: "#3d6b4f" }, { id: "blue", hex: "#2f6fb3" }] },
    { sku: "shoe-trailrunner", name: "Trailrunner GTX Running Shoe", category: "shoes", price: 139, rating: 4.7, reviews: 865,
      colors: [{ id: "slate", hex: "#56606b" }, { id: "blue", hex: "#2f6fb3" }], badge: "New" },
    { sku: "shoe-ridge-racer", name: "Ridge Racer 5 Running Shoe", category: "shoes", price: 119, rating: 4.5, reviews: 530,
      colors: [{ id: "coral", hex: "#e0735a" }, { id: "blue", hex: "#2f6fb3" }] },
    { sku: "pack-alpine-45", name: "Alpine 45L Trekking Backpack", category: "backpacks", price: 179, rating: 4.8, reviews: 377,
      colors: [{ id: "charcoal", hex: "#3b3f45" }, { id: "blue", hex: "#2f6fb3" }] },
    { sku: "pack-daytripper-22", name: "Daytripper 22L Daypack", category: "backpacks", price: 79, rating: 4.4, reviews: 291,
      colors: [{ id: "olive", hex: "#6f7a3a" }, { id: "blue", hex: "#2f6fb3" }] },
    { sku: "jacket-stormshell", name: "Stormshell Rain Jacket", category: "jackets", price: 199, rating: 4.7, reviews: 644,
      colors: [{ id: "red", hex: "#b8433a" }, { id: "blue", hex: "#2f6fb3" }], badge: "Waterproof" },
    { sku: "jacket-cirrus-down", name: "Cirrus Down Jacket", category: "jackets", price: 229, rating: 4.9, reviews: 256,
      colors: [{ id: "black", hex: "#24272b" }, { id: "blue", hex: "#2f6fb3" }] }
  ];

  // Banner content per demo segment, most specific first (rules.toml: 2001 Campers, 2002 Young runners,
  // 2003 Big spenders, 2004 Returning campers).
  var SEGMENT_CONTENT = [
    { id: "2004", theme: "dusk", eyebrow: "Welcome back, camper", title: "Finish your camp kit",
      text: "Returning campers get a free stuff sack with any backpack or sleeping bag this month.",
      cta: "Shop backpacks", filter: "backpacks", recommend: ["backpacks", "tents"], reason: "Because you are a returning camper" },
    { id: "2001", theme: "forest", eyebrow: "For campers", title: "Nights under the stars",
      text: "Backpacking tents are 15% off this week: pitched in three minutes, packed in two.",
      cta: "Shop tents", filter: "tents", recommend: ["tents", "backpacks"], reason: "Because you like camping" },
    { id: "2002", theme: "sunrise", eyebrow: "Trail Club runners", title: "Faster on the trail",
      text: "New trail shoes with a 30-day run-them-in guarantee, picked for the Trail Club.",
      cta: "Shop running shoes", filter: "shoes", recommend: ["shoes", "jackets"], reason: "Picked for Trail Club runners" },
    { id: "2003", theme: "lake", eyebrow: "A thank-you from us", title: "Free express shipping",
      text: "Your next order ships free and fast, no minimum. Our premium shells are a good place to start.",
      cta: "Shop jackets", filter: "jackets", recommend: ["jackets", "backpacks"], reason: "Premium picks for you" }
  ];
  var DEFAULT_CONTENT = { id: "default", theme: "default", eyebrow: "New season", title: "Gear up for the wild",
    text: "Tents, trail shoes, packs and shells, tested on real mountains by people who live on them.",
    cta: "Shop the collection", filter: "all", recommend: null, reason: "Our bestsellers this week" };

  var REGION_NAMES = { 3: "Singapore", 4: "São Paulo", 6: "Dublin", 7: "Virginia", 8: "Sydney", 9: "Oregon", 11: "Tokyo", 12: "India" };

  var state = { segments: [], cart: 0, colors: {}, chain: Promise.resolve(), identified: false };

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; }
      else if (key === "class") { node.className = attrs[key]; }
      else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  // ---------------------------------------------------------------- API calls

  function apiError(response, body) {
    var message = (body && (body.message || body.error)) || response.statusText || "request failed";
    var error = new Error(message);
    error.status = response.status;
    return error;
  }

  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) { throw apiError(response, data); }
        return data;
      });
    });
  }

  // One visitor's calls never run in parallel (the DCS wants it so): chain them.
  function serial(task) {
    var next = state.chain.then(task, task);
    state.chain = next.catch(function () { return null; });
    return next;
  }

  // ---------------------------------------------------------------- notices and status

  var noticeTimer = null;
  function notice(text, kind) {
    var box = $("[data-testid=notice]");
    box.textContent = text;
    box.className = "notice " + (kind || "warn");
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  function status(text, ok) {
    $("[data-testid=profile-status]").textContent = text;
    var dot = $("[data-testid=profile-status-dot]");
    dot.className = "dot " + (ok === true ? "ok" : ok === false ? "bad" : "");
  }

  // ---------------------------------------------------------------- visit counter

  function visitNumber() {
    var count = 1;
    try {
      var stored = parseInt(window.localStorage.getItem("rl_visits") || "0", 10) || 0;
      if (!window.sessionStorage.getItem("rl_session")) {
        stored += 1;
        window.localStorage.setItem("rl_visits", String(stored));
        window.sessionStorage.setItem("rl_session", "1");
      }
      count = Math.max(1, stored);
    } catch (e) { count = 1; }
    return count;
  }

  // ---------------------------------------------------------------- products

  function productArt(product, color) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 160 110");
    svg.setAttribute("aria-hidden", "true");
    var shapes = {
      tents: '<rect x="0" y="92" width="160" height="18" fill="#e6e1d3"/><path d="M20 94 L80 22 L140 94 Z" fill="COLOR"/>' +
        '<path d="M80 22 L68 94 L92 94 Z" fill="rgba(0,0,0,.25)"/><path d="M80 22 L80 14" stroke="#555" stroke-width="3"/>',
      shoes: '<path d="M18 70 C30 66 48 50 58 40 L78 44 C84 58 104 62 128 66 C142 68 146 78 144 86 L22 88 C14 88 12 74 18 70 Z" fill="COLOR"/>' +
        '<path d="M20 86 L144 86 L142 94 L24 94 Z" fill="#f3f3f0" stroke="#ccc"/><path d="M62 48 L74 52 M66 44 L78 48" stroke="#fff" stroke-width="3"/>',
      backpacks: '<rect x="46" y="20" width="68" height="82" rx="18" fill="COLOR"/><rect x="56" y="56" width="48" height="32" rx="8" fill="rgba(0,0,0,.2)"/>' +
        '<path d="M64 20 C64 6 96 6 96 20" fill="none" stroke="#444" stroke-width="5"/><rect x="56" y="34" width="48" height="6" rx="3" fill="rgba(255,255,255,.35)"/>',
      jackets: '<path d="M58 14 L80 22 L102 14 L132 30 L140 78 L118 80 L116 102 L44 102 L42 80 L20 78 L28 30 Z" fill="COLOR"/>' +
        '<path d="M80 22 L80 102" stroke="rgba(0,0,0,.3)" stroke-width="3"/><path d="M58 14 L80 36 L102 14" fill="none" stroke="rgba(0,0,0,.25)" stroke-width="3"/>'
    };
    svg.innerHTML = (shapes[product.category] || shapes.backpacks).replace(/COLOR/g, color.hex);
    return svg;
  }

  function selectedColor(product) {
    var id = state.colors[product.sku] || product.colors[0].id;
    return product.colors.filter(function (c) { return c.id === id; })[0] || product.colors[0];
  }

  function stars(rating) {
    var full = Math.round(rating);
    return "★★★★★".slice(0, full) + "☆☆☆☆☆".slice(0, 5 - full);
  }

  function productCard(product, compact) {
    var color = selectedColor(product);
    var art = el("div", { class: "product-art" }, [productArt(product, color)]);
    var swatches = el("div", { class: "swatches", role: "radiogroup", "aria-label": "Colour" });
    product.colors.forEach(function (option) {
      var swatch = el("button", {
        type: "button", class: "swatch" + (option.id === color.id ? " is-selected" : ""), role: "radio",
        "aria-checked": option.id === color.id ? "true" : "false", "aria-label": option.id,
        title: option.id, "data-color": option.id, "data-testid": "swatch-" + product.sku + "-" + option.id
      });
      swatch.style.background = option.hex;
      swatch.addEventListener("click", function (event) {
        event.stopPropagation();
        state.colors[product.sku] = option.id;
        renderProducts();
        renderRecommendations();
      });
      swatches.appendChild(swatch);
    });
    var add = el("button", { type: "button", class: "button button-primary add", "data-testid": "add-" + product.sku, text: "Add to cart" });
    add.addEventListener("click", function (event) {
      event.stopPropagation();
      addToCart(product, add);
    });
    var card = el("article", {
      class: "product-card" + (compact ? " compact" : ""), "data-testid": (compact ? "rec-" : "product-") + product.sku,
      "data-category": product.category, tabindex: "0"
    }, [
      product.badge && !compact ? el("span", { class: "badge", text: product.badge }) : null,
      art,
      el("div", { class: "product-info" }, [
        el("h3", { text: product.name }),
        el("p", { class: "rating", text: stars(product.rating) + " " + product.rating + " (" + product.reviews + ")" }),
        el("p", { class: "price", text: "$" + product.price.toFixed(2) }),
        compact ? null : swatches,
        compact ? null : add
      ])
    ]);
    card.addEventListener("click", function () { viewProduct(product); });
    card.addEventListener("keydown", function (event) { if (event.key === "Enter") { viewProduct(product); } });
    return card;
  }

  var activeFilter = "all";
  function renderProducts() {
    var grid = $("[data-testid=product-grid]");
    grid.innerHTML = "";
    PRODUCTS.filter(function (p) { return activeFilter === "all" || p.category === activeFilter; })
      .forEach(function (product) { grid.appendChild(productCard(product, false)); });
    $all(".filters .chip").forEach(function (chip) {
      chip.classList.toggle("is-active", chip.getAttribute("data-filter") === activeFilter);
    });
  }

  function setFilter(filter) {
    activeFilter = filter || "all";
    renderProducts();
  }

  // ---------------------------------------------------------------- signals and segments

  function signalsFor(product, extra) {
    var signals = {
      c_category: product.category,
      c_color: selectedColor(product).id,
      c_product: product.sku,
      c_page_type: "product",
      visit_number: state.visit
    };
    Object.keys(extra || {}).forEach(function (key) { signals[key] = extra[key]; });
    return signals;
  }

  function sendSignals(signals) {
    if (!state.identified) {
      notice("We could not identify your browser, so recommendations stay general for now.");
      return Promise.resolve(null);
    }
    return serial(function () {
      return request("POST", "/signals", { signals: signals })
        .then(function () { return request("GET", "/segments?refresh=true"); })
        .then(function (answer) { showSegments(answer); return answer; })
        .catch(function (error) {
          status("Personalization unavailable (" + (error.status || "offline") + ")", false);
          notice("Personalization is taking a break: " + error.message + ". You can keep shopping as usual.");
          return null;
        });
    });
  }

  function viewProduct(product) {
    return sendSignals(signalsFor(product));
  }

  function addToCart(product, button) {
    state.cart += 1;
    $("[data-testid=cart-count]").textContent = String(state.cart);
    if (button) {
      button.textContent = "Added ✓";
      setTimeout(function () { button.textContent = "Add to cart"; }, 1500);
    }
    return sendSignals(signalsFor(product, { c_cart_value: product.price }));
  }

  function contentFor(segments) {
    for (var i = 0; i < SEGMENT_CONTENT.length; i += 1) {
      if (segments.indexOf(SEGMENT_CONTENT[i].id) !== -1) { return SEGMENT_CONTENT[i]; }
    }
    return DEFAULT_CONTENT;
  }

  function showSegments(answer) {
    var segments = ((answer && answer.segments) || []).map(String);
    state.segments = segments;
    var list = $("[data-testid=segments-list]");
    list.innerHTML = "";
    if (!segments.length) {
      list.appendChild(el("li", { class: "muted", text: answer && answer.opted_out ? "opted out" : "none yet" }));
    }
    segments.forEach(function (id) {
      var known = SEGMENT_CONTENT.filter(function (c) { return c.id === id; })[0];
      list.appendChild(el("li", { "data-segment-id": id, "data-testid": "segment-" + id },
        [el("span", { class: "mono", text: id }), known ? el("span", { class: "muted", text: " " + segmentName(id) }) : null]));
    });
    var detail = answer ? [answer.segment_source && "source " + answer.segment_source, answer.cache && "cache " + answer.cache]
      .filter(Boolean).join(", ") : "";
    status(segments.length ? segments.length + " segment" + (segments.length > 1 ? "s" : "") + (detail ? " (" + detail + ")" : "")
      : "No segments yet: browse a little" + (detail ? " (" + detail + ")" : ""), true);
    renderHero();
    renderRecommendations();
  }

  function segmentName(id) {
    return { "2001": "Campers", "2002": "Young runners", "2003": "Big spenders", "2004": "Returning campers" }[id] || "";
  }

  function renderHero() {
    var content = contentFor(state.segments);
    var hero = $("[data-testid=hero-banner]");
    hero.className = "hero theme-" + content.theme;
    hero.setAttribute("data-segment", content.id);
    $("[data-testid=hero-eyebrow]").textContent = content.eyebrow;
    $("[data-testid=hero-title]").textContent = content.title;
    $("[data-testid=hero-text]").textContent = content.text;
    var cta = $("[data-testid=hero-cta]");
    cta.textContent = content.cta;
    cta.setAttribute("data-filter", content.filter);
  }

  function renderRecommendations() {
    var content = contentFor(state.segments);
    var picks;
    if (content.recommend) {
      picks = [];
      content.recommend.forEach(function (category) {
        PRODUCTS.forEach(function (p) { if (p.category === category && picks.length < 4) { picks.push(p); } });
      });
    } else {
      picks = PRODUCTS.slice().sort(function (a, b) { return b.reviews - a.reviews; }).slice(0, 4);
    }
    var strip = $("[data-testid=recommendations-list]");
    strip.innerHTML = "";
    strip.setAttribute("data-segment", content.id);
    picks.forEach(function (product) { strip.appendChild(productCard(product, true)); });
    $("[data-testid=recommendations-reason]").textContent = content.reason;
  }

  // ---------------------------------------------------------------- identity

  function showIds(ids) {
    $("[data-testid=visitor-mid]").textContent = ids.mid || ids.uuid || "unknown";
    var region = ids.region_id;
    $("[data-testid=visitor-region]").textContent = region == null ? "unknown"
      : region + (REGION_NAMES[region] ? " · " + REGION_NAMES[region] : "");
    $("[data-testid=visitor-region-host]").textContent = ids.region_host || "—";
    $("[data-testid=visitor-id-source]").textContent = [ids.id_source, ids.region_source].filter(Boolean).join(" / ") || "—";
    $("[data-testid=visitor-ids]").setAttribute("data-loaded", "true");
  }

  function identify() {
    return request("GET", "/_local/visitor")
      .catch(function (error) {
        notice("The ID service did not answer (" + error.message + "); showing general content.");
        return null;
      })
      .then(function () { return request("GET", "/ids"); })
      .then(function (ids) {
        state.identified = Boolean(ids && (ids.mid || ids.uuid));
        showIds(ids || {});
        if (ids && ids.opted_out) { status("You opted out: no personalization", true); }
        return ids;
      })
      .catch(function (error) {
        status("Visitor ID unavailable (" + (error.status || "offline") + ")", false);
        $("[data-testid=visitor-mid]").textContent = "unavailable";
        notice("We could not load your visitor profile: " + error.message + ".");
        return null;
      });
  }

  function loadSegments() {
    if (!state.identified) { return Promise.resolve(null); }
    return serial(function () {
      return request("GET", "/segments").then(showSegments).catch(function (error) {
        status("Segments unavailable (" + (error.status || "offline") + ")", false);
        return null;
      });
    });
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $all("[data-filter]").forEach(function (node) {
      if (node.getAttribute("data-testid") === "hero-cta") { return; }
      node.addEventListener("click", function () { setFilter(node.getAttribute("data-filter")); });
    });
    $("[data-testid=hero-cta]").addEventListener("click", function () {
      setFilter(this.getAttribute("data-filter") || "all");
    });
    var panel = $("[data-testid=visitor-panel]");
    $("[data-testid=visitor-panel-toggle]").addEventListener("click", function () {
      var collapsed = panel.classList.toggle("is-collapsed");
      this.setAttribute("aria-expanded", collapsed ? "false" : "true");
    });
    $("[data-testid=club-form]").addEventListener("submit", function (event) {
      event.preventDefault();
      var age = parseInt($("[data-testid=club-age]").value, 10);
      if (!age) { return; }
      sendSignals({ p_age: age, c_club: "trail", visit_number: state.visit }).then(function (answer) {
        if (answer) { notice("Welcome to the Trail Club!", "ok"); }
      });
    });
  }

  function start() {
    state.visit = visitNumber();
    wire();
    renderProducts();
    renderHero();
    renderRecommendations();
    identify().then(loadSegments);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
