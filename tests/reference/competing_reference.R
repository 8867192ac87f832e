# -----------------------------------------------------------------------------
# competing_reference.R -- R reference values ("fixtures") for neutrostats'
# competing-risks code (neutrostats/competing.py): Aalen-Johansen cumulative
# incidence with its standard error and interval, and Gray's K-sample test.
#
# Run from the repository root:
#     Rscript tests/reference/competing_reference.R
#
# Reads
#     tests/reference/data/mgus2.csv     (written by write_survival_data.R)
# Writes
#     tests/reference/data/cr_ties.csv   simulated data with heavy ties
#     tests/reference/competing_reference.json
#
# The outputs are committed, so the Python test-suite (and CI) never needs R.
# Everything is deterministic (fixed RNG kind and seed); every fit uses the
# data *read back from the CSV files*, so Python and R see identical input.
#
# What is recorded, per case:
#   survfit  survival::survfit(Surv(time, factor(status)) ~ group), the
#            multi-state Aalen-Johansen fit (with Surv(entry, time, ...) and
#            id = row for the delayed-entry case).  For every group and every
#            time in fit$time: n.risk (at risk in the initial state),
#            n.event (all transitions), n.censor and, per state, pstate,
#            std.err, lower, upper.  For multi-state data survfitCI()
#            reports std.err on the probability scale (logse = FALSE), from
#            the infinitesimal-jackknife (robust) variance -- the only
#            variance it offers -- and its default conf.type is "log":
#                lower = p * exp(-z se / p), upper = min(1, p * exp(z se / p)),
#            NA where p = 0 (survival:::survfit_confint).
#   cuminc   cmprsk::cuminc(time, status, group): estimate and variance per
#            group and cause at every distinct time (the value just after the
#            time, i.e. the last entry of cuminc's step-function pairs), and
#            $Tests (Gray's test: statistic, p-value as 1 - pchisq, df).
#            The p-value is also given as pchisq(lower.tail = FALSE)
#            (p_value_upper_tail), which keeps its precision when small.
#   The script stops unless the survfit and cuminc estimates agree to 1e-12.
#
# Non-finite numbers are written as the strings "NA", "NaN", "Inf", "-Inf".
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/competing_reference.R"
OUT_JSON    <- "tests/reference/competing_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/competing_reference.R"

if (!file.exists(SCRIPT_PATH)) {
  stop("run this script from the repository root: ", REGEN_CMD)
}

RNGkind("Mersenne-Twister", "Inversion", "Rejection")

# --- data --------------------------------------------------------------------

mg <- read.csv(file.path(DATA_DIR, "mgus2.csv"))
mg$time   <- ifelse(mg$pstat == 1, mg$ptime, mg$futime)
mg$status <- ifelse(mg$pstat == 1, 1, 2 * mg$death)

# Heavy ties: 12 distinct times, 3 groups, censoring and events of three kinds
# (1 = interest, 2 and 3 = competing) at the same times, a stratum variable
# for the stratified Gray test and a delayed-entry time (entry < time).
set.seed(20240611)
n <- 600
grp <- sample(c("normal", "mild", "severe"), n, replace = TRUE, prob = c(0.45, 0.35, 0.20))
rate <- c(normal = 0.10, mild = 0.16, severe = 0.25)[grp]
time <- pmin(ceiling(rexp(n, rate)), 12)
u <- runif(n)
p1 <- c(normal = 0.35, mild = 0.45, severe = 0.55)[grp]
status <- ifelse(u < p1, 1, ifelse(u < p1 + 0.30, 2, ifelse(u < p1 + 0.38, 3, 0)))
status[time == 12 & runif(n) < 0.7] <- 0            # administrative censoring
site <- sample(c("north", "south"), n, replace = TRUE)
entry <- ifelse(runif(n) < 0.7, 0, floor(runif(n) * time))
ties <- data.frame(id = seq_len(n), time = time, status = as.integer(status),
                   group = grp, site = site, entry = entry)
write.csv(ties, file.path(DATA_DIR, "cr_ties.csv"), row.names = FALSE)
ties <- read.csv(file.path(DATA_DIR, "cr_ties.csv"))
stopifnot(all(ties$entry < ties$time))

# --- helpers -------------------------------------------------------------------

num <- function(x) {
  x <- as.numeric(x)
  out <- as.list(x)
  out[is.na(x) & !is.nan(x)] <- "NA"
  out[is.nan(x)] <- "NaN"
  out[is.infinite(x) & x > 0] <- "Inf"
  out[is.infinite(x) & x < 0] <- "-Inf"
  out
}

# One survfit object (possibly with strata) -> list by group name.
survfit_by_group <- function(fit, group_names) {
  strata <- if (is.null(fit$strata)) rep("all", length(fit$time)) else
    rep(sub("^group=", "", names(fit$strata)), fit$strata)
  states <- fit$states
  out <- list()
  for (g in unique(strata)) {
    i <- which(strata == g)
    rec <- list(time = num(fit$time[i]),
                n_risk = num(fit$n.risk[i, 1]),
                n_event = num(rowSums(fit$n.event[i, , drop = FALSE])),
                n_censor = num(fit$n.censor[i]))
    for (nm in c("pstate", "std.err", "lower", "upper")) {
      m <- fit[[nm]][i, , drop = FALSE]
      rec[[sub(".", "_", nm, fixed = TRUE)]] <- setNames(
        lapply(seq_along(states), function(k) num(m[, k])), states)
    }
    out[[g]] <- rec
  }
  out
}

# cuminc's step-function pairs -> value just after each distinct time.
cuminc_by_group <- function(ci, groups, causes) {
  out <- list()
  for (g in groups) {
    rec <- list()
    for (k in causes) {
      e <- ci[[paste(g, k)]]
      if (is.null(e)) next
      last <- !duplicated(e$time, fromLast = TRUE)
      rec[[as.character(k)]] <- list(time = num(e$time[last]), estimate = num(e$est[last]),
                                     variance = num(e$var[last]))
    }
    out[[g]] <- rec
  }
  out
}

num1 <- function(x) num(x)[[1]]

tests_of <- function(ci) {
  if (is.null(ci$Tests)) return(NULL)
  t <- ci$Tests
  lapply(setNames(seq_len(nrow(t)), rownames(t)), function(r)
    list(statistic = num1(t[r, "stat"]), p_value = num1(t[r, "pv"]),
         p_value_upper_tail = num1(pchisq(t[r, "stat"], t[r, "df"], lower.tail = FALSE)),
         df = num1(t[r, "df"])))
}

# survfit and cuminc must give the same Aalen-Johansen estimate.
check_agree <- function(sf, cu) {
  for (g in names(cu)) for (k in names(cu[[g]])) {
    t_sf <- unlist(sf[[g]]$time)
    p_sf <- unlist(sf[[g]]$pstate[[k]])
    e <- cu[[g]][[k]]
    t_cu <- unlist(e$time); p_cu <- unlist(e$estimate)
    keep <- t_cu > 0 | seq_along(t_cu) > 1
    idx <- match(t_cu[keep], t_sf)
    stopifnot(!anyNA(idx))
    if (max(abs(p_sf[idx] - p_cu[keep])) > 1e-12)
      stop("survfit and cuminc disagree for group ", g, " cause ", k)
  }
}

run_case <- function(id, d, group = NULL, conf_level = 0.95, entry = FALSE, data_csv, recode) {
  d$fstatus <- factor(d$status)
  g <- if (is.null(group)) rep("all", nrow(d)) else d[[group]]
  d$g <- g
  if (entry) {
    fit <- survfit(Surv(entry, time, fstatus) ~ g, data = d, id = id, conf.int = conf_level)
  } else if (is.null(group)) {
    fit <- survfit(Surv(time, fstatus) ~ 1, data = d, conf.int = conf_level)
  } else {
    fit <- survfit(Surv(time, fstatus) ~ g, data = d, conf.int = conf_level)
  }
  if (!is.null(fit$strata)) names(fit$strata) <- sub("^g=", "", names(fit$strata))
  stopifnot(identical(fit$conf.type, "log"), identical(fit$logse, FALSE))
  sf <- survfit_by_group(fit, unique(g))
  case <- list(id = id, data = data_csv, recode = recode, group = if (is.null(group)) NA else group,
               entry = if (entry) "entry" else NA, conf_level = conf_level,
               survfit_call = paste0("survfit(Surv(", if (entry) "entry, " else "",
                                     "time, factor(status)) ~ ", if (is.null(group)) "1" else group,
                                     if (entry) ", id = id" else "",
                                     ", conf.int = ", conf_level, ")"),
               conf_type = fit$conf.type, states = fit$states, survfit = sf)
  if (!entry) {
    causes <- sort(unique(d$status[d$status != 0]))
    ci <- if (is.null(group)) cuminc(d$time, d$status) else cuminc(d$time, d$status, g)
    groups <- if (is.null(group)) "1" else sort(unique(g))
    cu <- cuminc_by_group(ci, groups, causes)
    if (is.null(group)) names(cu) <- "all"
    check_agree(sf, cu)
    case$cuminc_call <- paste0("cuminc(time, status", if (is.null(group)) "" else paste0(", ", group), ")")
    case$cuminc <- cu
    case$gray <- tests_of(ci)
  }
  case
}

gray_variant <- function(d, group, strata = NULL, rho = 0) {
  ci <- if (is.null(strata)) cuminc(d$time, d$status, d[[group]], rho = rho) else
    cuminc(d$time, d$status, d[[group]], strata = d[[strata]], rho = rho)
  list(group = group, strata = if (is.null(strata)) NA else strata, rho = rho,
       call = paste0("cuminc(time, status, ", group,
                     if (is.null(strata)) "" else paste0(", strata = ", strata),
                     if (rho != 0) paste0(", rho = ", rho) else "", ")$Tests"),
       tests = tests_of(ci))
}

MG_RECODE <- "time = ifelse(pstat == 1, ptime, futime); status = ifelse(pstat == 1, 1, 2 * death)"
MG_CSV <- "tests/reference/data/mgus2.csv"
TIES_CSV <- "tests/reference/data/cr_ties.csv"

cases <- list(
  run_case("mgus2_sex", mg, "sex", data_csv = MG_CSV, recode = MG_RECODE),
  run_case("mgus2_all", mg, NULL, data_csv = MG_CSV, recode = MG_RECODE),
  run_case("mgus2_all_conf90", mg, NULL, conf_level = 0.90, data_csv = MG_CSV, recode = MG_RECODE),
  run_case("ties_group", ties, "group", data_csv = TIES_CSV, recode = ""),
  run_case("ties_all", ties, NULL, data_csv = TIES_CSV, recode = ""),
  run_case("ties_group_entry", ties, "group", entry = TRUE, data_csv = TIES_CSV, recode = "")
)
names(cases) <- NULL

gray <- list(
  list(id = "mgus2_sex", data = MG_CSV, recode = MG_RECODE) |> c(gray_variant(mg, "sex")),
  list(id = "mgus2_sex_rho1", data = MG_CSV, recode = MG_RECODE) |> c(gray_variant(mg, "sex", rho = 1)),
  list(id = "ties_group", data = TIES_CSV, recode = "") |> c(gray_variant(ties, "group")),
  list(id = "ties_group_strata_site", data = TIES_CSV, recode = "") |>
    c(gray_variant(ties, "group", strata = "site")),
  list(id = "ties_site_strata_group", data = TIES_CSV, recode = "") |>
    c(gray_variant(ties, "site", strata = "group")),
  list(id = "ties_group_rho2", data = TIES_CSV, recode = "") |> c(gray_variant(ties, "group", rho = 2))
)

pkgs <- c("survival", "cmprsk", "jsonlite")
header <- list(
  r_version = R.version$version.string,
  packages = setNames(lapply(pkgs, function(p) as.character(packageVersion(p))), pkgs),
  script = SCRIPT_PATH,
  regenerate = paste("apt-get install -y r-base-core r-cran-survival r-cran-cmprsk r-cran-jsonlite &&",
                     REGEN_CMD, "(from the repository root)"),
  rng = "RNGkind('Mersenne-Twister', 'Inversion', 'Rejection'); set.seed(20240611) for cr_ties.csv",
  conventions = list(
    survfit = paste("multi-state survfit (survfitCI): pstate = Aalen-Johansen state probabilities;",
                    "std_err = infinitesimal-jackknife SE on the probability scale (logse = FALSE);",
                    "lower/upper = conf.type 'log' (the multi-state default): p*exp(-+z*se/p), upper",
                    "capped at 1, NA where p = 0. n_risk = at risk in the initial state '(s0)'."),
    cuminc = paste("cmprsk::cuminc: est and var (Aalen-type delta-method variance from Gray's cinc)",
                   "taken just after every distinct time of the group's curve for that cause."),
    gray = "cuminc(...)$Tests: stat, pv = 1 - pchisq(stat, df), df; p_value_upper_tail = pchisq(stat, df, lower.tail = FALSE)",
    groups = "the ungrouped fits are keyed 'all'",
    nonfinite = "strings 'NA', 'NaN', 'Inf', '-Inf'"
  )
)

write_json(list(header = header, cases = cases, gray = gray), OUT_JSON,
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", OUT_JSON, "\n")
