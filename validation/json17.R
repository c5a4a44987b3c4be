# Shared by the reference scripts in validation/: CSV and JSON writers that keep every
# double to 17 significant digits, so R and Python compare the same numbers.
# Used as:  source(file.path("validation", "json17.R"))

write_csv17 <- function(df, path) {
  # Full double precision (17 significant digits), no row names, no quoting of numbers.
  num <- vapply(df, is.numeric, logical(1))
  df[num] <- lapply(df[num], function(x) ifelse(is.na(x), "", sprintf("%.17g", x)))
  write.csv(df, path, row.names = FALSE, quote = which(!num), na = "")
}

# jsonlite prints at most 15 significant digits; the comparisons need all 17, so the JSON is
# written by this small serializer (numbers with %.17g, NA as null, length-1 vectors unboxed
# unless wrapped in I()).
to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.list(x)) {
    if (length(x) == 0L) return("{}")
    keys <- names(x)
    parts <- vapply(seq_along(x), function(i) {
      paste0(inner, '"', keys[i], '": ', to_json(x[[i]], inner))
    }, character(1))
    return(paste0("{\n", paste(parts, collapse = ",\n"), "\n", indent, "}"))
  }
  one <- function(v) {
    if (is.na(v)) return("null")
    if (is.logical(v)) return(if (v) "true" else "false")
    if (is.numeric(v)) return(sprintf("%.17g", v))
    paste0('"', gsub('"', '\\\\"', v), '"')
  }
  items <- vapply(seq_along(x), function(i) one(x[[i]]), character(1))
  if (length(x) == 1L && !inherits(x, "AsIs")) return(items)
  paste0("[", paste(items, collapse = ", "), "]")
}
