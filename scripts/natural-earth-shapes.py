#!/usr/bin/env python3
"""Converts Natural Earth's 110m country outlines, as the npm package world-atlas@2.0.2 ships them
(countries-110m.json, TopoJSON), into the compact text file the report's fraud map reads:
crates/mirador-report/assets/ne_110m_countries.txt.

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python3 scripts/natural-earth-shapes.py package/countries-110m.json > crates/mirador-report/assets/ne_110m_countries.txt

Format: `C<TAB><ISO 3166 numeric or -><TAB><name>` starts a country; each following
`R<TAB>lon,lat lon,lat ...` line is one outer ring of it (degrees, two decimals). Holes are
left out (the few countries inside others are drawn after them).
"""
import json
import sys

topo = json.load(open(sys.argv[1]))
(sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
arcs = []
for arc in topo["arcs"]:
    x = y = 0
    points = []
    for dx, dy in arc:
        x += dx
        y += dy
        points.append((x * sx + tx, y * sy + ty))
    arcs.append(points)


def ring(indices):
    out = []
    for i in indices:
        points = arcs[i] if i >= 0 else arcs[~i][::-1]
        out.extend(points if not out else points[1:])
    rounded = []
    for lon, lat in out:
        p = (round(lon, 2), round(lat, 2))
        if not rounded or rounded[-1] != p:
            rounded.append(p)
    return rounded


print("# Natural Earth 1:110m admin-0 countries (public domain, naturalearthdata.com), via world-atlas 2.0.2")
print("# (ISC, Copyright 2013-2019 Michael Bostock); see NATURAL_EARTH_LICENSE.md. Made by scripts/natural-earth-shapes.py.")
for g in topo["objects"]["countries"]["geometries"]:
    polygons = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
    print(f"C\t{g.get('id', '-')}\t{g['properties']['name']}")
    for polygon in polygons:
        r = ring(polygon[0])
        if len(r) >= 3:
            print("R\t" + " ".join(f"{lon:g},{lat:g}" for lon, lat in r))
