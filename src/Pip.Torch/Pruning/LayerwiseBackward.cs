using Pip.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Pruning;

/// <summary>
/// Gradients of a scalar objective with respect to each decoder layer's parameters, delivered one layer at a time,
/// from the last layer down, as soon as they exist, so that a caller can reduce them and let them go.
/// </summary>
/// <remarks>
/// TorchSharp has no backward hooks, so the backward pass is driven by hand: one forward pass keeps
/// each layer's input (and, unless recomputing, its own small autograd graph); the head's objective is differentiated
/// with respect to the last hidden state; then, from the last layer down, <c>autograd.grad</c> returns the layer's
/// parameter gradients and the gradient of its input, which is passed down. At any time at most ONE layer's parameter
/// gradients exist: never a full gradient copy of the model.
/// </remarks>
internal static class LayerwiseBackward
{
    /// <summary>Receives one layer's parameter gradients; they are disposed when the callback returns.</summary>
    /// <param name="layer">Current layer index.</param>
    /// <param name="parameters">The layer's parameters.</param>
    /// <param name="gradients">The gradients, in the order of <paramref name="parameters"/>.</param>
    public delegate void LayerGradients(int layer, IReadOnlyList<Tensor> parameters, IReadOnlyList<Tensor> gradients);

    /// <summary>Runs the forward pass and the layer-by-layer backward pass of <paramref name="objective"/>.</summary>
    /// <param name="model">The model; its weights are not changed and no <c>.grad</c> is left on them.</param>
    /// <param name="inputIds">Token ids [batch, seq] (int64) on the model's device.</param>
    /// <param name="objective">Scalar objective from the logits [batch, seq, vocab].</param>
    /// <param name="onLayer">Called for each layer, last first.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    /// <param name="recompute">
    /// False (default): the forward pass records one autograd graph per layer (each layer's input is a detached leaf),
    /// so the backward pass costs what a normal one does, and each layer's graph is freed as soon as it has been
    /// differentiated. True: the forward pass records nothing and each layer is recomputed from its saved input
    /// during the backward pass (activation checkpointing: about one extra forward pass, for long sequences or
    /// models whose activations do not fit).
    /// </param>
    public static void Run(ICausalLMModule model, Tensor inputIds, Func<Tensor, Tensor> objective, LayerGradients onLayer, CancellationToken cancellationToken, bool recompute = false)
    {
        var layers = model.Layers;
        var parameters = layers.Select(l => l.parameters().Select(p => (Tensor)p).ToArray()).ToArray();
        long batch = inputIds.shape[0], length = inputIds.shape[1];
        using var scope = NewDisposeScope();
        using var context = model.CreateLayerContext(length, batch);
        var inputs = new Tensor[layers.Count];
        var outputs = new Tensor?[layers.Count];
        Tensor hidden;
        using (var mode = recompute ? no_grad() : enable_grad())
        {
            hidden = model.Embed(inputIds).detach();
            for (int l = 0; l < layers.Count; l++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                inputs[l] = recompute ? hidden : hidden.requires_grad_(true);
                var output = model.ForwardLayer(l, inputs[l], context);
                outputs[l] = recompute ? null : output;
                hidden = recompute ? output : output.detach();
            }
        }

        Tensor upstream;
        using (enable_grad())
        using (var headScope = NewDisposeScope())
        {
            var last = hidden.detach().requires_grad_(true);
            var value = objective(model.LmHead(model.FinalNorm(last)));
            upstream = autograd.grad([value], [last])[0].MoveToOuterDisposeScope();
        }

        for (int l = layers.Count - 1; l >= 0; l--)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var layerScope = NewDisposeScope();
            IList<Tensor> grads;
            using (enable_grad())
            {
                Tensor input = inputs[l], output;
                if (recompute)
                {
                    input = inputs[l].detach().requires_grad_(true);
                    output = model.ForwardLayer(l, input, context);
                }
                else
                {
                    output = outputs[l]!;
                }

                // Without retain_graph, autograd frees this layer's graph here.
                grads = l == 0
                    ? [null!, .. autograd.grad([output], parameters[l], [upstream])]
                    : autograd.grad([output], [input, .. parameters[l]], [upstream]);
            }

            onLayer(l, parameters[l], grads.Skip(1).ToArray());
            upstream.Dispose();
            outputs[l]?.Dispose();
            inputs[l].Dispose();
            upstream = l == 0 ? upstream : grads[0].MoveToOuterDisposeScope();
        }
    }

    /// <summary>The norm of order <paramref name="order"/> of a tensor, computed in float32.</summary>
    /// <param name="tensor">Any floating tensor.</param>
    /// <param name="order">1, 2, or positive infinity (any p ≥ 1 works).</param>
    public static double Norm(Tensor tensor, double order)
    {
        using var scope = NewDisposeScope();
        var t = tensor.dtype == ScalarType.Float32 ? tensor : tensor.to_type(ScalarType.Float32);
        return linalg.vector_norm(t, order).item<float>();
    }
}
