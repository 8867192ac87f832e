## Reference values for neutrostats.stats.tableone.table_one (Table 1 and SMDs).
##
## Reads tests/reference/data/tableone_cohort.csv (500 persons of the bundled
## synthetic cohort, 4 tiers, missing values in age, age band, sex and
## Duffy-null) and writes tests/reference/tableone_reference.json.
##
## R's tableone package is not in Debian bookworm and CRAN was out of reach
## when this was written, so the statistics are computed here in base R
## (stats::quantile, var, solve) from their published definitions:
##
## * quantiles: quantile(type = 7), R's default;
## * continuous SMD (Austin 2009, Stat Med 28:3083, eq. 1):
##     (mean_1 - mean_0) / sqrt((var_1 + var_0) / 2), var with n - 1;
## * binary SMD (Austin 2009, eq. 2):
##     (p_1 - p_0) / sqrt((p_1 (1 - p_1) + p_0 (1 - p_0)) / 2);
## * categorical SMD (Yang & Dalton 2012, SAS Global Forum paper 335-2012):
##     sqrt(T' S^-1 T), T = proportions of levels 2..K in group 1 minus
##     group 0, S = (S_1 + S_0) / 2, S_g[k, k] = p_k (1 - p_k),
##     S_g[k, l] = -p_k p_l; inverted with solve() (every level occurs in
##     every group here, so S is non-singular);
## * tableone's summary SMD: the mean over all pairs of groups of the
##     absolute pairwise SMD; tableone defines 0/0 (two constant, equal
##     groups) as 0, as does this script.
##
## Missing values: continuous summaries use the non-missing values; level
## percentages are of the non-missing values (tableone's default).
##
## Run from the repository root:  Rscript tests/reference/tableone_reference.R

library(jsonlite)

csv <- "tests/reference/data/tableone_cohort.csv"
out_file <- "tests/reference/tableone_reference.json"
tiers <- c("normal", "subnormal", "mild", "moderate_severe")

d <- read.csv(csv, na.strings = c("NA", ""), stringsAsFactors = FALSE)
d$tier <- factor(d$tier, levels = tiers)
d$age_band <- factor(d$age_band, levels = c("<50", "50-69", "70+"))
d$sex <- factor(d$sex, levels = c("F", "M"))

continuous <- c("age_at_index", "index_anc_per_ul")
categorical <- c("sex", "age_band")
binary <- c("duffy_null", "viral_infection_prevalent", "hiv_prevalent",
            "hematologic_malignancy_prevalent", "solid_cancer_prevalent",
            "autoimmune_prevalent", "death")
## pandas writes booleans as True/False, which R 4.2's read.csv leaves as text
for (v in binary) {
  stopifnot(all(d[[v]] %in% c("True", "False", NA)))
  d[[v]] <- ifelse(is.na(d[[v]]), NA, d[[v]] == "True")
}
groups <- c(tiers, "Overall")
subset_of <- function(g) if (g == "Overall") d else d[d$tier == g, ]

## --- group summaries -------------------------------------------------------
rows <- list()
for (g in groups) {
  s <- subset_of(g)
  rows[[length(rows) + 1]] <- list(variable = "n", group = g, level = NA, n = nrow(s))
  for (v in continuous) {
    x <- s[[v]]
    y <- x[!is.na(x)]
    q <- quantile(y, c(0.5, 0.25, 0.75), type = 7, names = FALSE)
    rows[[length(rows) + 1]] <- list(
      variable = v, group = g, level = NA, n = length(y), denominator = nrow(s),
      missing = sum(is.na(x)), median = q[1], q1 = q[2], q3 = q[3],
      mean = mean(y), sd = sd(y))
  }
  for (v in c(categorical, binary)) {
    x <- s[[v]]
    lev <- if (is.factor(x)) levels(x) else c("FALSE", "TRUE")
    xs <- as.character(x)
    nonmissing <- sum(!is.na(x))
    for (l in lev) {
      k <- sum(!is.na(xs) & xs == l)
      rows[[length(rows) + 1]] <- list(
        variable = v, group = g, level = if (l %in% c("FALSE", "TRUE")) tools::toTitleCase(tolower(l)) else l,
        n = k, denominator = nonmissing, percent = 100 * k / nonmissing,
        missing = sum(is.na(x)))
    }
  }
}

## --- SMDs ---------------------------------------------------------------------
smd_continuous <- function(x1, x0) {
  x1 <- x1[!is.na(x1)]; x0 <- x0[!is.na(x0)]
  (mean(x1) - mean(x0)) / sqrt((var(x1) + var(x0)) / 2)
}
smd_binary <- function(x1, x0) {
  p1 <- mean(x1, na.rm = TRUE); p0 <- mean(x0, na.rm = TRUE)
  num <- p1 - p0; den <- sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
  if (num == 0 && den == 0) 0 else num / den
}
smd_categorical <- function(x1, x0) {
  p1 <- as.vector(prop.table(table(x1)))   # table() drops NA: proportions of non-missing
  p0 <- as.vector(prop.table(table(x0)))
  cov_of <- function(p) { S <- -outer(p, p); diag(S) <- p * (1 - p); S }
  t1 <- p1[-1]; t0 <- p0[-1]
  S <- (cov_of(t1) + cov_of(t0)) / 2
  T <- t1 - t0
  sqrt(drop(t(T) %*% solve(S) %*% T))
}
smd_of <- function(v, x1, x0) {
  if (v %in% continuous) smd_continuous(x1, x0)
  else if (v %in% binary) smd_binary(x1, x0)
  else smd_categorical(x1, x0)
}

smd_rows <- list()
pairwise_mean <- list()
for (v in c(continuous, categorical, binary)) {
  for (a in tiers) for (b in tiers) if (a != b) {
    smd_rows[[length(smd_rows) + 1]] <- list(
      variable = v, group = b, reference = a,
      smd = smd_of(v, d[d$tier == b, v], d[d$tier == a, v]))
  }
  pairs <- combn(tiers, 2)
  vals <- apply(pairs, 2, function(p) abs(smd_of(v, d[d$tier == p[2], v], d[d$tier == p[1], v])))
  pairwise_mean[[v]] <- mean(vals)
}

result <- list(
  header = list(
    r_version = R.version.string,
    packages = list(jsonlite = as.character(packageVersion("jsonlite")),
                    stats = as.character(packageVersion("stats"))),
    script = "tests/reference/tableone_reference.R",
    command = "Rscript tests/reference/tableone_reference.R",
    data = csv,
    notes = paste(
      "R's tableone package was not installable (not in Debian bookworm, CRAN unreachable);",
      "SMDs are computed in base R from Austin (2009) and Yang & Dalton (2012),",
      "quantiles with quantile(type = 7).")),
  groups = tiers,
  types = c(setNames(as.list(rep("continuous", length(continuous))), continuous),
            setNames(as.list(rep("categorical", length(categorical))), categorical),
            setNames(as.list(rep("binary", length(binary))), binary)),
  summaries = rows,
  smd = smd_rows,
  pairwise_mean = pairwise_mean
)
writeLines(toJSON(result, auto_unbox = TRUE, digits = NA, na = "null", null = "null", pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
