# -----------------------------------------------------------------------------
# weights_tte_reference.R -- R reference values ("fixtures") for the case
# weights of neutrostats' time-to-event functions (neutrostats/stats/
# survival.py, competing.py): weighted Kaplan-Meier, survival at horizons and
# restricted mean, the weighted log-rank test as the score test of a
# weighted Cox model, and the weighted Aalen-Johansen cumulative incidence.
#
# Run from the repository root:
#     Rscript tests/reference/weights_tte_reference.R
#
# Reads (written by write_survival_data.R and competing_reference.R)
#     tests/reference/data/lung.csv, mgus2.csv, cr_ties.csv
# Writes
#     tests/reference/weights_tte_reference.json
#
# The weights are a deterministic function of the row number i = 1..n of the
# CSV, so Python builds the same ones without another data file:
#     w     = 1 + (i %% 3) / 2      (1.5, 2, 1, 1.5, ...; non-integer)
#     w_int = 1 + (i %% 3)          (2, 3, 1, 2, ...; integer)
#
# What is recorded:
#   km        survfit(Surv(time, status) ~ g, weights = w, robust = FALSE):
#             Greenwood variance on the weighted counts (R's default for
#             non-integer weights is the robust IJ variance; for integer
#             weights robust = FALSE is the default).  Per group: time,
#             n.risk, n.event, n.censor (sums of weights), surv,
#             std_err_surv = surv * std.err (std.err of survfit is that of
#             log S), lower, upper for the recorded conf.type.
#   at        summary(fit, times = ...): n.risk, surv, std.err (S scale),
#             lower, upper;  rmean: summary(fit, rmean = h)$table.
#   score     summary(coxph(Surv(time, status) ~ ..., weights = w))$sctest
#             (Efron ties, model-based variance): the weighted log-rank.
#   cif       survfit(Surv([entry,] time, factor(status)) ~ g, weights = w
#             [, id = id]): pstate, std.err (infinitesimal jackknife with
#             case weights, probability scale), lower, upper ("log"), and
#             survfit's n.risk / n.event / n.censor, which for multi-state
#             curves are NOT weighted (numbers of rows).
#
# Non-finite numbers are written as the strings "NA", "NaN", "Inf", "-Inf".
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/weights_tte_reference.R"
OUT_JSON    <- "tests/reference/weights_tte_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/weights_tte_reference.R"

if (!file.exists(SCRIPT_PATH)) {
  stop("run this script from the repository root: ", REGEN_CMD)
}

num <- function(x) {
  x <- as.numeric(x)
  out <- as.list(x)
  out[is.na(x) & !is.nan(x)] <- "NA"
  out[is.nan(x)] <- "NaN"
  out[is.infinite(x) & x > 0] <- "Inf"
  out[is.infinite(x) & x < 0] <- "-Inf"
  out
}
num1 <- function(x) num(x)[[1]]

add_weights <- function(d) {
  i <- seq_len(nrow(d))
  d$w <- 1 + (i %% 3) / 2
  d$w_int <- 1 + (i %% 3)
  d
}

lung <- add_weights(read.csv(file.path(DATA_DIR, "lung.csv")))
lung$old <- as.integer(lung$age >= 65)
mg <- add_weights(read.csv(file.path(DATA_DIR, "mgus2.csv")))
mg$time   <- ifelse(mg$pstat == 1, mg$ptime, mg$futime)
mg$status <- ifelse(mg$pstat == 1, 1, 2 * mg$death)
ties <- add_weights(read.csv(file.path(DATA_DIR, "cr_ties.csv")))

strata_of <- function(fit) {
  if (is.null(fit$strata)) rep("all", length(fit$time)) else
    rep(sub("^g=", "", names(fit$strata)), fit$strata)
}

# --- weighted Kaplan-Meier -----------------------------------------------------

km_case <- function(id, d, group, wcol, conf_type, times, rmean) {
  d$g <- if (is.null(group)) "all" else d[[group]]
  d$wt <- d[[wcol]]
  fit <- if (is.null(group)) {
    survfit(Surv(time, status) ~ 1, data = d, weights = wt, robust = FALSE, conf.type = conf_type)
  } else {
    survfit(Surv(time, status) ~ g, data = d, weights = wt, robust = FALSE, conf.type = conf_type)
  }
  st <- strata_of(fit)
  curves <- list()
  for (g in unique(st)) {
    i <- which(st == g)
    curves[[g]] <- list(time = num(fit$time[i]), n_risk = num(fit$n.risk[i]), n_event = num(fit$n.event[i]),
                        n_censor = num(fit$n.censor[i]), surv = num(fit$surv[i]),
                        std_err_surv = num(fit$surv[i] * fit$std.err[i]),
                        lower = num(fit$lower[i]), upper = num(fit$upper[i]))
  }
  s <- summary(fit, times = times, extend = FALSE)
  sst <- if (is.null(s$strata)) rep("all", length(s$time)) else sub("^g=", "", as.character(s$strata))
  at <- list()
  for (g in unique(sst)) {
    i <- which(sst == g)
    at[[g]] <- list(time = num(s$time[i]), n_risk = num(s$n.risk[i]), surv = num(s$surv[i]),
                    std_err = num(s$std.err[i]), lower = num(s$lower[i]), upper = num(s$upper[i]))
  }
  tab <- summary(fit, rmean = rmean)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list("all", names(tab)))
  rownames(tab) <- sub("^g=", "", rownames(tab))
  rm <- lapply(setNames(rownames(tab), rownames(tab)), function(g)
    list(rmean = num1(tab[g, "rmean"]), se = num1(tab[g, "se(rmean)"])))
  list(id = id, group = if (is.null(group)) NA else group, weights = wcol, conf_type = conf_type,
       call = paste0("survfit(Surv(time, status) ~ ", if (is.null(group)) "1" else group,
                     ", weights = ", wcol, ", robust = FALSE, conf.type = '", conf_type, "')"),
       curves = curves, times = num(times), at = at, rmean_horizon = rmean, rmean = rm)
}

km <- list(
  km_case("lung_sex_w", lung, "sex", "w", "log-log", c(90, 180, 365, 730), 730),
  km_case("lung_sex_wint", lung, "sex", "w_int", "log-log", c(90, 180, 365, 730), 730),
  km_case("lung_all_w_log", lung, NULL, "w", "log", c(100, 500, 1000), 1000)
)

# --- weighted log-rank = score test of the weighted Cox model ------------------

score_case <- function(id, formula, d, wcol, group, strata = NA, trend = FALSE) {
  d$wt <- d[[wcol]]
  fit <- coxph(formula, data = d, weights = wt)   # ties = "efron"
  sc <- summary(fit)$sctest
  list(id = id, call = paste0("coxph(", deparse(formula), ", weights = ", wcol, ")"),
       group = group, strata = strata, trend = trend, weights = wcol,
       statistic = num1(sc[["test"]]), df = num1(sc[["df"]]), p_value = num1(sc[["pvalue"]]),
       n = fit$n)
}

score <- suppressWarnings(list(
  score_case("lung_sex_w", Surv(time, status) ~ factor(sex), lung, "w", "sex"),
  score_case("lung_sex_wint", Surv(time, status) ~ factor(sex), lung, "w_int", "sex"),
  score_case("lung_ecog_w", Surv(time, status) ~ factor(ph.ecog), lung, "w", "ph.ecog"),
  score_case("lung_ecog_trend_w", Surv(time, status) ~ ph.ecog, lung, "w", "ph.ecog", trend = TRUE),
  score_case("lung_sex_strata_old_w", Surv(time, status) ~ factor(sex) + strata(old), lung, "w", "sex",
             strata = "old")
))

# --- weighted Aalen-Johansen -----------------------------------------------------

cif_case <- function(id, d, data_csv, recode, group, wcol, entry = FALSE) {
  d$g <- d[[group]]
  d$wt <- d[[wcol]]
  d$fstatus <- factor(d$status)
  fit <- if (entry) {
    survfit(Surv(entry, time, fstatus) ~ g, data = d, weights = wt, id = id)
  } else {
    survfit(Surv(time, fstatus) ~ g, data = d, weights = wt)
  }
  stopifnot(identical(fit$conf.type, "log"), identical(fit$logse, FALSE))
  st <- strata_of(fit)
  states <- fit$states
  curves <- list()
  for (g in unique(st)) {
    i <- which(st == g)
    rec <- list(time = num(fit$time[i]), n_risk_rows = num(fit$n.risk[i, 1]),
                n_event_rows = num(rowSums(fit$n.event[i, , drop = FALSE])),
                n_censor_rows = num(fit$n.censor[i]))
    for (nm in c("pstate", "std.err", "lower", "upper")) {
      m <- fit[[nm]][i, , drop = FALSE]
      rec[[sub(".", "_", nm, fixed = TRUE)]] <- setNames(lapply(seq_along(states), function(k) num(m[, k])),
                                                         states)
    }
    curves[[g]] <- rec
  }
  list(id = id, data = data_csv, recode = recode, group = group, weights = wcol,
       entry = if (entry) "entry" else NA,
       call = paste0("survfit(Surv(", if (entry) "entry, " else "", "time, factor(status)) ~ ", group,
                     ", weights = ", wcol, if (entry) ", id = id" else "", ")"),
       states = states, curves = curves)
}

MG_RECODE <- "time = ifelse(pstat == 1, ptime, futime); status = ifelse(pstat == 1, 1, 2 * death)"
cif <- list(
  cif_case("mgus2_sex_w", mg, "tests/reference/data/mgus2.csv", MG_RECODE, "sex", "w"),
  cif_case("mgus2_sex_wint", mg, "tests/reference/data/mgus2.csv", MG_RECODE, "sex", "w_int"),
  cif_case("ties_group_entry_w", ties, "tests/reference/data/cr_ties.csv", "", "group", "w", entry = TRUE)
)

pkgs <- c("survival", "jsonlite")
header <- list(
  r_version = R.version$version.string,
  packages = setNames(lapply(pkgs, function(p) as.character(packageVersion(p))), pkgs),
  script = SCRIPT_PATH,
  regenerate = paste("apt-get install -y r-base-core r-cran-survival r-cran-jsonlite &&", REGEN_CMD,
                     "(from the repository root)"),
  weights = "row i = 1..n of the CSV: w = 1 + (i %% 3) / 2, w_int = 1 + (i %% 3)",
  conventions = list(
    km = paste("survfit(..., weights, robust = FALSE): counts are sums of weights; std_err_surv =",
               "surv * std.err (Greenwood on the weighted counts, S scale)"),
    at = "summary(fit, times = , extend = FALSE); rmean = summary(fit, rmean = h)$table rmean, se(rmean)",
    score = "summary(coxph(..., weights = w))$sctest, Efron ties; rows with a missing ph.ecog are dropped by R",
    cif = paste("multi-state survfit with weights: pstate, std_err (IJ, probability scale), lower/upper",
                "(conf.type 'log'); *_rows are survfit's unweighted counts"),
    nonfinite = "strings 'NA', 'NaN', 'Inf', '-Inf'"
  )
)

write_json(list(header = header, km = km, score = score, cif = cif), OUT_JSON,
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", OUT_JSON, "\n")
