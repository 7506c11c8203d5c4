//! Just enough protobuf to edit ONNX graphs: expose an inner tensor as an output, or cut a
//! graph into the part between chosen tensors (so one model can run as two stages).
//!
//! ONNX models are `ModelProto` messages; field 7 is the `GraphProto`: nodes = 1
//! (`NodeProto`: inputs = 1, outputs = 2), initializers = 5 (`TensorProto`, name = 8),
//! inputs = 11, outputs = 12, value infos = 13 (`ValueInfoProto`: name = 1, type = 2;
//! `TypeProto.tensor_type` = 1; `Tensor.elem_type` = 1). Repeated fields may appear anywhere in
//! a message, so appending one more output to the graph's bytes and rewriting the graph's
//! length is a valid edit.

use std::collections::HashSet;

/// ONNX element type of 32-bit floats.
pub(crate) const FLOAT: u64 = 1;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn put_bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// One field of a message: its number, its whole encoding (key included), and for
/// length-delimited fields the payload.
struct Field<'a> {
    number: u64,
    raw: &'a [u8],
    payload: &'a [u8],
}

/// The fields of a message, in order.
fn fields(message: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let start = at;
        let key = get_varint(message, &mut at).ok_or("truncated field key")?;
        let (payload_start, end) = match key & 7 {
            0 => {
                get_varint(message, &mut at).ok_or("truncated varint")?;
                (at, at)
            }
            1 => (at, at + 8),
            5 => (at, at + 4),
            2 => {
                let len = get_varint(message, &mut at).ok_or("truncated length")? as usize;
                (at, at.checked_add(len).ok_or("length overflows")?)
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        if end > message.len() {
            return Err("a field runs past the end of the message".into());
        }
        out.push(Field { number: key >> 3, raw: &message[start..end], payload: &message[payload_start..end] });
        at = end;
    }
    Ok(out)
}

/// The strings in field `number` of a message.
fn strings(message: &[u8], number: u64) -> Result<Vec<&str>, String> {
    fields(message)?
        .into_iter()
        .filter(|f| f.number == number)
        .map(|f| std::str::from_utf8(f.payload).map_err(|_| "a name is not UTF-8".to_owned()))
        .collect()
}

/// A `ValueInfoProto` naming a tensor of `elem_type` (shape left to the runtime).
fn value_info(name: &str, elem_type: u64) -> Vec<u8> {
    let mut tensor = Vec::new();
    put_varint(&mut tensor, 1 << 3);
    put_varint(&mut tensor, elem_type);
    let mut type_proto = Vec::new();
    put_bytes(&mut type_proto, 1, &tensor);
    let mut info = Vec::new();
    put_bytes(&mut info, 1, name.as_bytes());
    put_bytes(&mut info, 2, &type_proto);
    info
}

/// `model` with its graph replaced by `edit(graph)`.
fn edit_graph(model: &[u8], edit: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>) -> Result<Vec<u8>, String> {
    let fields = fields(model)?;
    let graph = fields.iter().find(|f| f.number == 7).ok_or("no graph in the model")?;
    let graph = edit(graph.payload)?;
    let mut out = Vec::with_capacity(model.len());
    for f in &fields {
        if f.number == 7 {
            put_bytes(&mut out, 7, &graph);
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    Ok(out)
}

/// The inputs of the node called `node` in `model`'s graph (`None` when there is no such node).
pub(crate) fn node_inputs(model: &[u8], node: &str) -> Result<Option<Vec<String>>, String> {
    let top = fields(model)?;
    let graph = top.iter().find(|f| f.number == 7).ok_or("no graph in the model")?;
    for f in fields(graph.payload)?.iter().filter(|f| f.number == 1) {
        if strings(f.payload, 3)?.first() == Some(&node) {
            return Ok(Some(strings(f.payload, 1)?.into_iter().map(str::to_owned).collect()));
        }
    }
    Ok(None)
}

/// A copy of the ONNX `model` whose graph also outputs the tensor `name` of type `elem_type`.
pub(crate) fn with_extra_output(model: &[u8], name: &str, elem_type: u64) -> Result<Vec<u8>, String> {
    edit_graph(model, |graph| {
        let mut graph = graph.to_vec();
        put_bytes(&mut graph, 12, &value_info(name, elem_type));
        Ok(graph)
    })
}

/// The part of `model` that computes `outputs` from `inputs` (each a tensor name and its
/// element type): the nodes and initializers those outputs need, reading the named tensors as
/// graph inputs instead of computing them; the result reads no other input. Fails when an output cannot be computed from the
/// inputs (a tensor it needs has no producer left).
pub(crate) fn extract(model: &[u8], inputs: &[(&str, u64)], outputs: &[(&str, u64)]) -> Result<Vec<u8>, String> {
    edit_graph(model, |graph| {
        let fields = fields(graph)?;
        let cut: HashSet<&str> = inputs.iter().map(|(n, _)| *n).collect();
        let mut needed: HashSet<&str> = outputs.iter().map(|(n, _)| *n).filter(|n| !cut.contains(n)).collect();
        // Nodes are in topological order: walking back, a node is kept when something needed
        // comes out of it, and what it reads becomes needed (unless it is a new input).
        let mut keep = vec![false; fields.len()];
        let mut produced: HashSet<&str> = HashSet::new();
        for (i, f) in fields.iter().enumerate().rev().filter(|(_, f)| f.number == 1) {
            let outs = strings(f.payload, 2)?;
            if outs.iter().any(|o| needed.contains(o)) {
                keep[i] = true;
                produced.extend(outs);
                needed.extend(strings(f.payload, 1)?.into_iter().filter(|n| !n.is_empty() && !cut.contains(n)));
            }
        }
        let mut out = Vec::new();
        let mut available = produced;
        available.extend(cut.iter().copied());
        for (i, f) in fields.iter().enumerate() {
            match f.number {
                1 if keep[i] => out.extend_from_slice(f.raw),
                1 | 11 | 12 => {}
                5 => {
                    let name = strings(f.payload, 8)?.first().copied().unwrap_or_default();
                    if needed.contains(name) {
                        available.insert(name);
                        out.extend_from_slice(f.raw);
                    }
                }
                13 => {
                    let name = strings(f.payload, 1)?.first().copied().unwrap_or_default();
                    if available.contains(name) && !cut.contains(name) {
                        out.extend_from_slice(f.raw);
                    }
                }
                _ => out.extend_from_slice(f.raw),
            }
        }
        if let Some(missing) = needed.iter().find(|n| !available.contains(*n)) {
            return Err(format!("tensor {missing} cannot be computed from the chosen inputs"));
        }
        for (name, elem_type) in inputs {
            put_bytes(&mut out, 11, &value_info(name, *elem_type));
        }
        for (name, elem_type) in outputs {
            put_bytes(&mut out, 12, &value_info(name, *elem_type));
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_appended_to_the_graph_and_the_rest_kept() {
        // ModelProto { ir_version (1) = 8, graph (7) = { name (2) = "g" }, opset (8) = {} }
        let mut model = vec![0x08, 0x08];
        put_bytes(&mut model, 7, &[0x12, 0x01, b'g']);
        put_bytes(&mut model, 8, &[]);
        let edited = with_extra_output(&model, "t", FLOAT).unwrap();
        let mut expected_graph = vec![0x12, 0x01, b'g'];
        let mut vi = Vec::new();
        put_bytes(&mut vi, 1, b"t");
        put_bytes(&mut vi, 2, &[0x0a, 0x02, 0x08, 0x01]);
        put_bytes(&mut expected_graph, 12, &vi);
        let mut expected = vec![0x08, 0x08];
        put_bytes(&mut expected, 7, &expected_graph);
        put_bytes(&mut expected, 8, &[]);
        assert_eq!(edited, expected);
        assert!(with_extra_output(&[0x08], "t", FLOAT).is_err(), "truncated");
        assert!(with_extra_output(&[0x08, 0x01], "t", FLOAT).unwrap_err().contains("no graph"));
    }

    fn node(inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            put_bytes(&mut n, 1, i.as_bytes());
        }
        for o in outputs {
            put_bytes(&mut n, 2, o.as_bytes());
        }
        put_bytes(&mut n, 3, outputs[0].as_bytes());
        put_bytes(&mut n, 4, b"Add");
        n
    }

    fn names(graph: &[u8], field: u64, name_field: u64) -> Vec<String> {
        fields(graph)
            .unwrap()
            .iter()
            .filter(|f| f.number == field)
            .map(|f| strings(f.payload, name_field).unwrap().join("+"))
            .collect()
    }

    #[test]
    fn extraction_keeps_what_the_outputs_need_from_the_new_inputs() {
        // x + a → y; y + b → z; z + c → w; x + c → v
        let mut graph = Vec::new();
        put_bytes(&mut graph, 1, &node(&["x", "a"], &["y"]));
        put_bytes(&mut graph, 1, &node(&["y", "b"], &["z"]));
        put_bytes(&mut graph, 1, &node(&["z", "c"], &["w"]));
        put_bytes(&mut graph, 1, &node(&["x", "c"], &["v"]));
        for init in ["a", "b", "c"] {
            let mut t = Vec::new();
            put_bytes(&mut t, 8, init.as_bytes());
            put_bytes(&mut graph, 5, &t);
        }
        put_bytes(&mut graph, 11, &value_info("x", FLOAT));
        put_bytes(&mut graph, 12, &value_info("w", FLOAT));
        put_bytes(&mut graph, 12, &value_info("v", FLOAT));
        let mut model = vec![0x08, 0x08];
        put_bytes(&mut model, 7, &graph);

        let part = extract(&model, &[("y", FLOAT)], &[("w", FLOAT)]).unwrap();
        let g = fields(&part).unwrap().into_iter().find(|f| f.number == 7).unwrap().payload.to_vec();
        assert_eq!(names(&g, 1, 2), ["z", "w"], "the nodes after y that lead to w");
        assert_eq!(names(&g, 5, 8), ["b", "c"], "only the initializers they read");
        assert_eq!(names(&g, 11, 1), ["y"]);
        assert_eq!(names(&g, 12, 1), ["w"]);

        let head = extract(&model, &[("x", FLOAT)], &[("y", FLOAT), ("v", FLOAT)]).unwrap();
        let g = fields(&head).unwrap().into_iter().find(|f| f.number == 7).unwrap().payload.to_vec();
        assert_eq!(names(&g, 1, 2), ["y", "v"]);
        assert_eq!(names(&g, 11, 1), ["x"], "the original input is replaced, not repeated");

        assert_eq!(node_inputs(&model, "z").unwrap(), Some(vec!["y".to_owned(), "b".to_owned()]));
        assert_eq!(node_inputs(&model, "nothing").unwrap(), None);

        let err = extract(&model, &[("y", FLOAT)], &[("v", FLOAT)]).unwrap_err();
        assert!(err.contains("tensor x cannot be computed"), "{err}");
    }
}
