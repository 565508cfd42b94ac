"""The prompts JSON schema: parsing, validation against a clip, CLI flag forms."""

import json
import subprocess
import sys

import pytest

from samroto.core.prompts import (
    PromptError, from_cli, load_prompts, parse_box_arg, parse_point_arg, validate,
)

DOC = {
    "version": 1,
    "objects": [
        {"id": 1, "name": "hero", "prompts": [
            {"frame": 1001, "points": [[10, 20], [30.5, 40]], "labels": [1, 0]},
            {"frame": 1010, "box": [5, 5, 50, 60]},
            {"frame": 1020, "box": [5, 5, 50, 60], "points": [[20, 20]], "labels": [1]},
        ]},
        {"id": 2, "name": "car", "prompts": [{"frame": 1030, "mask": "car.png"}]},
    ],
}


def write(tmp_path, data, name="p.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_round_trip_and_mask_path(tmp_path):
    path = write(tmp_path, DOC)
    ps = load_prompts(path)
    assert [o.name for o in ps.objects] == ["hero", "car"]
    assert ps.objects[0].prompts[0].labels == [1, 0]
    assert ps.objects[0].prompts[2].box == (5, 5, 50, 60)
    assert ps.to_dict() == DOC
    assert ps.mask_path(ps.objects[1].prompts[0]) == str(tmp_path / "car.png")
    assert ps.frames() == [1001, 1010, 1020, 1030]
    (tmp_path / "car.png").write_bytes(b"x")
    validate(ps, range(1001, 1041), 64, 64)


def test_import_is_pure_python():
    code = "import sys, samroto.core.prompts; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_malformed_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{"version": 1,\n "objects": [,]}')
    with pytest.raises(PromptError, match=r"line 2, column 14"):
        load_prompts(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["objects"][0]["prompts"][0].update(labels=[1]), r"object 1 \('hero'\), frame 1001, 'labels'.*2 point\(s\) but 1"),
    (lambda d: d["objects"][0]["prompts"][0].update(labels=[1, 2]), r"'labels'\]?\[1\]: label must be 1"),
    (lambda d: d["objects"][1].update(id=1), r"duplicate object id 1"),
    (lambda d: d["objects"][1].update(prompts=[]), r"object 2 \('car'\): has no prompts"),
    (lambda d: d.update(version=7), r"unsupported version 7"),
    (lambda d: d["objects"][0]["prompts"][1].update(box=[1, 2, 3]), r"frame 1010, 'box'"),
    (lambda d: d["objects"][0]["prompts"][1].pop("box"), r"frame 1010: the prompt has no points"),
])
def test_schema_errors(mutate, message):
    doc = json.loads(json.dumps(DOC))
    mutate(doc)
    with pytest.raises(PromptError, match=message):
        load_prompts(doc)


@pytest.mark.parametrize("prompt, message", [
    ({"frame": 999, "points": [[1, 1]], "labels": [1]}, r"frame 999, 'frame'.*not in the source \(frames 1001-1040\)"),
    ({"frame": 1001, "box": [10, 10, 5, 20]}, r"frame 1001, 'box'.*inverted"),
    ({"frame": 1001, "box": [0, 0, 65, 20]}, r"'box'.*outside the 64x48 image"),
    ({"frame": 1001, "points": [[70, 1]], "labels": [1]}, r"'points'\[0\].*outside"),
    ({"frame": 1001, "mask": "nope.png"}, r"'mask'.*does not exist"),
])
def test_validate_against_clip(prompt, message):
    ps = load_prompts({"version": 1, "objects": [{"id": 3, "name": "x", "prompts": [prompt]}]})
    with pytest.raises(PromptError, match=message):
        validate(ps, range(1001, 1041), 64, 48)


def test_cli_forms():
    assert parse_point_arg("1:1001:640,360") == (1, 1001, 640.0, 360.0, 1)
    assert parse_point_arg("2:5:1.5,2e1:neg") == (2, 5, 1.5, 20.0, 0)
    assert parse_box_arg("1:1001:1,2,3,4") == (1, 1001, (1.0, 2.0, 3.0, 4.0))
    with pytest.raises(PromptError, match="OBJ:FRAME:X,Y"):
        parse_point_arg("1:640,360")
    with pytest.raises(PromptError, match="OBJ:FRAME:X0,Y0,X1,Y1"):
        parse_box_arg("1:1:2,3,4")
    ps = from_cli(points=["1:10:5,5", "1:10:8,8:neg", "2:12:3,3"], boxes=["1:10:0,0,9,9"])
    assert ps.to_dict()["objects"][0] == {
        "id": 1, "name": "obj1",
        "prompts": [{"frame": 10, "points": [[5.0, 5.0], [8.0, 8.0]], "labels": [1, 0], "box": [0.0, 0.0, 9.0, 9.0]}]}
    assert ps.objects[1].prompts[0].frame == 12
