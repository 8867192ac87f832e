# Reference values for neutrostats.stats.survival (Kaplan-Meier, survival at
# horizons, restricted mean survival time, log-rank tests), from R's survival
# package. Regenerate from the repository root:
#   apt-get install -y r-base-core r-cran-survival r-cran-jsonlite
#   Rscript tests/reference/write_survival_data.R
#   Rscript tests/reference/survival_reference.R
# Writes tests/reference/survival_reference.json (and data/km_*.csv).
suppressPackageStartupMessages({library(survival); library(jsonlite)})
RNGkind("Mersenne-Twister", "Inversion", "Rejection")

fin <- function(x) {
  # JSON has no Inf/NaN/NA: encode them as strings.
  if (is.list(x)) return(lapply(x, fin))
  if (is.numeric(x)) {
    out <- as.list(x)
    out[is.na(x) & !is.nan(x)] <- "NA"; out[is.nan(x)] <- "NaN"
    out[!is.na(x) & x == Inf] <- "Inf"; out[!is.na(x) & x == -Inf] <- "-Inf"
    if (length(x) == 1) return(out[[1]]) else return(out)
  }
  x
}

lung <- read.csv("tests/reference/data/lung.csv")
veteran <- read.csv("tests/reference/data/veteran.csv")

# Heavy ties: times rounded to 8 distinct values, three groups.
set.seed(20161)
n <- 400
ties <- data.frame(group = sample(c("a", "b", "c"), n, replace = TRUE))
rate <- c(a = 0.10, b = 0.18, c = 0.30)[ties$group]
ties$time <- pmin(ceiling(rexp(n, rate)), 8)
ties$status <- as.integer(runif(n) < 0.75 & ties$time < 8)
write.csv(ties, "tests/reference/data/km_ties.csv", row.names = FALSE)

# Delayed entry: entry before the exit time.
set.seed(20162)
m <- 300
late <- data.frame(group = sample(c("x", "y"), m, replace = TRUE))
late$time <- round(rexp(m, ifelse(late$group == "x", 0.05, 0.09)) + 1, 1)
late$entry <- round(runif(m) * pmin(late$time - 0.1, 10), 1)
late$status <- as.integer(runif(m) < 0.8)
write.csv(late, "tests/reference/data/km_late.csv", row.names = FALSE)

km_case <- function(id, formula, data, conf_type, conf_level = 0.95) {
  fit <- survfit(formula, data = data, conf.type = conf_type, conf.int = conf_level)
  s <- summary(fit, censored = TRUE)
  strata <- if (is.null(s$strata)) rep("all", length(s$time)) else sub(".*=", "", as.character(s$strata))
  list(id = id, formula = deparse(formula), conf_type = conf_type, conf_level = conf_level,
       rows = fin(list(group = strata, time = s$time, n_risk = s$n.risk, n_event = s$n.event,
                       n_censor = s$n.censor, estimate = s$surv, std_error = s$std.err,
                       conf_low = s$lower, conf_high = s$upper)))
}

km <- list()
for (ct in c("log-log", "log", "plain")) {
  km[[length(km) + 1]] <- km_case(paste0("lung_sex_", ct), Surv(time, status) ~ sex, lung, ct)
  km[[length(km) + 1]] <- km_case(paste0("ties_", ct), Surv(time, status) ~ group, ties, ct)
  km[[length(km) + 1]] <- km_case(paste0("late_", ct), Surv(entry, time, status) ~ group, late, ct)
}
km[[length(km) + 1]] <- km_case("veteran_all_loglog90", Surv(time, status) ~ 1, veteran, "log-log", 0.90)

at_times <- function(id, formula, data, times, horizon) {
  fit <- survfit(formula, data = data, conf.type = "log-log")
  s <- summary(fit, times = times)
  strata <- if (is.null(s$strata)) rep("all", length(s$time)) else sub(".*=", "", as.character(s$strata))
  tab <- summary(fit, rmean = horizon)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  groups <- if (is.null(fit$strata)) "all" else sub(".*=", "", names(fit$strata))
  list(id = id, times = times, horizon = horizon,
       rows = fin(list(group = strata, time = s$time, n_risk = s$n.risk, estimate = s$surv,
                       std_error = s$std.err, conf_low = s$lower, conf_high = s$upper)),
       rmst = fin(list(group = groups, rmst = unname(tab[, "rmean"]), std_error = unname(tab[, "se(rmean)"]))))
}
survival_at <- list(
  at_times("lung_sex", Surv(time, status) ~ sex, lung, c(90, 180, 365, 730), 730),
  at_times("ties_group", Surv(time, status) ~ group, ties, c(1, 2, 4, 6), 6),
  at_times("veteran_trt", Surv(time, status) ~ trt, veteran, c(30, 100, 365), 365)
)

logrank_case <- function(id, formula, data, scores = NULL) {
  sd <- survdiff(formula, data = data)
  # survdiff leaves out groups expecting no events (their df does not count).
  df <- sum(sd$exp > 0) - 1
  out <- list(id = id, formula = deparse(formula), statistic = sd$chisq,
              df = df, p_value = pchisq(sd$chisq, df, lower.tail = FALSE),
              observed = as.numeric(sd$obs), expected = as.numeric(sd$exp))
  if (!is.null(dim(sd$obs))) {  # stratified: rows are groups, sum over strata
    out$observed <- as.numeric(rowSums(sd$obs)); out$expected <- as.numeric(rowSums(sd$exp))
    out$df <- nrow(sd$obs) - 1
    out$p_value <- pchisq(sd$chisq, out$df, lower.tail = FALSE)
  }
  if (!is.null(scores)) {
    # Trend test for ordered groups (e.g. Collett, Modelling Survival Data,
    # 3rd ed., sec. 2.6): (w'(O - E))^2 / (w' V w).
    u <- sum(scores * (out$observed - out$expected))
    v <- as.numeric(t(scores) %*% sd$var %*% scores)
    out$trend <- list(scores = scores, statistic = u^2 / v, df = 1,
                      p_value = pchisq(u^2 / v, 1, lower.tail = FALSE))
  }
  fin(out)
}
veteran$cell <- factor(veteran$celltype, levels = c("squamous", "smallcell", "adeno", "large"))
# Group "c" leaves before the first event: it expects no events and survdiff drops it.
early <- data.frame(time = c(2, 3, 3, 5, 6, 8, 9, 4, 7, 7, 10, 12, 0.5, 1, 1.5),
                    status = c(1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0),
                    group = c(rep("a", 7), rep("b", 5), rep("c", 3)))
write.csv(early, "tests/reference/data/km_early_group.csv", row.names = FALSE)
logrank <- list(
  logrank_case("early_group", Surv(time, status) ~ group, early),
  logrank_case("lung_sex", Surv(time, status) ~ sex, lung),
  logrank_case("veteran_celltype", Surv(time, status) ~ cell, veteran, scores = c(0, 1, 2, 3)),
  logrank_case("ties_group", Surv(time, status) ~ group, ties, scores = c(0, 1, 2)),
  logrank_case("veteran_trt_strata_celltype", Surv(time, status) ~ trt + strata(cell), veteran)
)

out <- list(
  header = list(
    r_version = R.version.string,
    packages = list(survival = as.character(packageVersion("survival")),
                    jsonlite = as.character(packageVersion("jsonlite"))),
    script = "tests/reference/survival_reference.R",
    regenerate = "Rscript tests/reference/write_survival_data.R && Rscript tests/reference/survival_reference.R",
    conventions = list(
      std_error = "summary.survfit's std.err: standard error of S(t) (Greenwood), not of the cumulative hazard",
      groups = "group labels without the 'var=' prefix; 'all' when there is no grouping",
      non_finite = "Inf, -Inf, NaN and NA are strings"
    )),
  kaplan_meier = km, survival_at = survival_at, logrank = logrank)
write_json(out, "tests/reference/survival_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
