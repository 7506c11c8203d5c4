//! Just enough protobuf to make an ONNX graph expose one of its inner tensors as an output.
//!
//! ONNX models are `ModelProto` messages; field 7 is the `GraphProto`, whose field 12 lists the
//! graph's outputs (`ValueInfoProto`: name = 1, type = 2; `TypeProto.tensor_type` = 1;
//! `Tensor.elem_type` = 1). Repeated fields may appear anywhere in a message, so appending one
//! more output to the graph's bytes and rewriting the graph's length is a valid edit.

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

/// A copy of the ONNX `model` whose graph also outputs the tensor `name` of type `elem_type`.
pub(crate) fn with_extra_output(model: &[u8], name: &str, elem_type: u64) -> Result<Vec<u8>, String> {
    let mut tensor = Vec::new();
    put_varint(&mut tensor, 1 << 3);
    put_varint(&mut tensor, elem_type);
    let mut type_proto = Vec::new();
    put_bytes(&mut type_proto, 1, &tensor);
    let mut value_info = Vec::new();
    put_bytes(&mut value_info, 1, name.as_bytes());
    put_bytes(&mut value_info, 2, &type_proto);

    let mut out = Vec::with_capacity(model.len() + value_info.len() + 16);
    let mut at = 0;
    let mut found = false;
    while at < model.len() {
        let start = at;
        let key = get_varint(model, &mut at).ok_or("truncated field key")?;
        let end = match key & 7 {
            0 => {
                get_varint(model, &mut at).ok_or("truncated varint")?;
                at
            }
            1 => at + 8,
            5 => at + 4,
            2 => {
                let len = get_varint(model, &mut at).ok_or("truncated length")? as usize;
                at + len
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        if end > model.len() {
            return Err("a field runs past the end of the model".into());
        }
        if key == (7 << 3 | 2) {
            let mut graph = model[at..end].to_vec();
            put_bytes(&mut graph, 12, &value_info);
            put_bytes(&mut out, 7, &graph);
            found = true;
        } else {
            out.extend_from_slice(&model[start..end]);
        }
        at = end;
    }
    if found { Ok(out) } else { Err("no graph in the model".into()) }
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
}
