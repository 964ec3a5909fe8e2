package archive

// Version is the version of the extraction code, recorded in every
// verdict's identity of the archive check. Bump it whenever a change can
// make the same package extract to other files or findings (a new format,
// a new hidden-data rule): findings made under an older version are then
// never reused.
const Version = "2"
