//! Loading an ONNX graph with tract and running it on one fixed-shape input.

use tract_onnx::prelude::*;

use crate::VisionError;

type Plan = SimplePlan<TypedFact, Box<dyn TypedOp>, Graph<TypedFact, Box<dyn TypedOp>>>;

/// One output tensor: its shape and its values, row-major.
pub type Output = (Vec<usize>, Vec<f32>);

/// An optimised, runnable network whose input shape is fixed at load time
/// (fixed shapes let tract plan every buffer once).
pub struct Net {
    plan: Plan,
    shape: Vec<usize>,
}

/// The ONNX graph in `bytes`, not yet planned for an input size.
pub fn parse(bytes: &[u8]) -> Result<tract_onnx::pb::ModelProto, VisionError> {
    tract_onnx::onnx()
        .proto_model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(model_error)
}

fn model_error(e: TractError) -> VisionError {
    VisionError::Model(format!("{e:#}"))
}

impl Net {
    pub fn load(bytes: &[u8], shape: &[usize]) -> Result<Net, VisionError> {
        Net::from_proto(&parse(bytes)?, shape)
    }

    /// Plans the graph `proto` (as [`parse`] read it, perhaps then edited:
    /// a graph whose shapes are constants, made for another input size).
    pub fn from_proto(
        proto: &tract_onnx::pb::ModelProto,
        shape: &[usize],
    ) -> Result<Net, VisionError> {
        let plan = tract_onnx::onnx()
            .model_for_proto_model(proto)
            .map_err(model_error)?
            .with_input_fact(0, f32::fact(shape).into())
            .map_err(model_error)?
            .into_optimized()
            .map_err(model_error)?
            .into_runnable()
            .map_err(model_error)?;
        Ok(Net {
            plan,
            shape: shape.to_vec(),
        })
    }

    /// The input shape the network was loaded for.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Runs the network on `input` (row-major, `shape()` elements) and
    /// returns every output as (shape, values).
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<Output>, VisionError> {
        // Moves the buffer into the tensor (the detector's is 3 MB).
        let array = tract_ndarray::ArrayD::from_shape_vec(tract_ndarray::IxDyn(&self.shape), input)
            .map_err(|e| VisionError::Model(format!("input does not fit {:?}: {e}", self.shape)))?;
        let tensor = Tensor::from(array);
        let outputs = self.plan.run(tvec!(tensor.into())).map_err(model_error)?;
        outputs
            .iter()
            .map(|t| {
                let view = t.to_array_view::<f32>().map_err(model_error)?;
                Ok((view.shape().to_vec(), view.iter().copied().collect()))
            })
            .collect()
    }
}
