// assetscan test rule: matches the fabricated marker built by
// clamav.YARAMarkerSample() (kept as hex so this file does not match itself).
rule Assetscan_Test_Marker
{
    strings:
        $m = { 41 53 53 45 54 53 43 41 4e 2d 59 41 52 41 2d 54 45 53 54 2d 4d 41 52 4b 45 52 2d 37 66 33 63 39 61 }
    condition:
        $m
}
