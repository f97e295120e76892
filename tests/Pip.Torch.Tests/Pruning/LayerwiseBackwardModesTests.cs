using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning;

public sealed class LayerwiseBackwardModesTests
{
    private static readonly LlamaConfig Config = new()
    {
        Family = DecoderFamily.Llama, VocabSize = 40, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 3,
        NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 4,
    };

    [Fact]
    public void Run_RecomputeOrKeepGraphs_GiveTheSameGradientsAsAPlainBackward()
    {
        using var model = LlamaForCausalLM.CreateRandom(Config, seed: 3, std: 0.3);
        using var batch = PaddedBatch.Create([[1, 5, 7, 9, 2], [3, 4, 8]], model.Device);

        // Plain backward of the same objective.
        var expected = new Dictionary<string, float[]>();
        using (var scope = NewDisposeScope())
        {
            var losses = batch.SequenceLosses(model.Logits(batch.Ids));
            (losses[0] - losses[1]).backward();
            for (int l = 0; l < Config.NumHiddenLayers; l++)
            {
                foreach (var (name, p) in model.Layers[l].named_parameters())
                {
                    expected[$"{l}.{name}"] = p.grad!.data<float>().ToArray();
                }
            }

            model.zero_grad();
            foreach (var p in model.parameters()) p.grad = null;
        }

        foreach (bool recompute in new[] { false, true })
        {
            var seen = new List<int>();
            LayerwiseBackward.Run(model, batch.Ids, logits => { var l = batch.SequenceLosses(logits); return l[0] - l[1]; },
                (layer, parameters, gradients) =>
                {
                    seen.Add(layer);
                    var names = model.Layers[layer].named_parameters().Select(p => p.name).ToArray();
                    for (int i = 0; i < gradients.Count; i++)
                    {
                        gradients[i].data<float>().ToArray().Should().BeEquivalentTo(expected[$"{layer}.{names[i]}"],
                            o => o.Using<float>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-5f)).WhenTypeIs<float>(),
                            $"layer {layer} {names[i]} (recompute: {recompute})");
                    }
                },
                CancellationToken.None,
                recompute);

            seen.Should().Equal(2, 1, 0);
            model.parameters().Count(p => p.grad is not null).Should().Be(0, "no gradient is left on the weights");
        }
    }
}
