using System.Text.Json.Nodes;
using Pip.Checkpoints;

namespace Pip.Core.Tests.Checkpoints;

public sealed class ConfigWeightsCheckTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Writes a tiny checkpoint (zero weights of the given shapes) with a config.json patched by <paramref name="patch"/>.</summary>
    private string Checkpoint(IModelConfig config, IEnumerable<(string Name, long[] Shape)> tensors, Action<JsonObject>? patch = null)
    {
        var folder = System.IO.Path.Combine(_dir.Path, "model-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var json = JsonNode.Parse(config.Serialize())!.AsObject();
        patch?.Invoke(json);
        File.WriteAllText(System.IO.Path.Combine(folder, "config.json"), json.ToJsonString());
        SafeTensorsWriter.Write(System.IO.Path.Combine(folder, "model.safetensors"),
            tensors.Select(t => SafeTensorSource.FromBytes(t.Name, SafeTensorDType.F32, t.Shape, new byte[t.Shape.Aggregate(4L, (a, b) => a * b)])).ToList());
        return folder;
    }

    private static LlamaConfig Llama() => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 16,
        HiddenSize = 8,
        IntermediateSize = 12,
        NumHiddenLayers = 2,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 1,
        HeadDim = 4,
        TieWordEmbeddings = true,
    };

    private static IEnumerable<(string, long[])> LlamaWeights(int layers = 2)
    {
        yield return ("model.embed_tokens.weight", [16, 8]);
        yield return ("model.norm.weight", [8]);
        for (var i = 0; i < layers; i++)
        {
            yield return ($"model.layers.{i}.self_attn.q_proj.weight", [8, 8]);
            yield return ($"model.layers.{i}.self_attn.k_proj.weight", [4, 8]);
            yield return ($"model.layers.{i}.self_attn.v_proj.weight", [4, 8]);
            yield return ($"model.layers.{i}.self_attn.o_proj.weight", [8, 8]);
            yield return ($"model.layers.{i}.mlp.gate_proj.weight", [12, 8]);
            yield return ($"model.layers.{i}.mlp.up_proj.weight", [12, 8]);
            yield return ($"model.layers.{i}.mlp.down_proj.weight", [8, 12]);
        }
    }

    private static OptConfig Opt() => new()
    {
        VocabSize = 20,
        HiddenSize = 8,
        FfnDim = 16,
        NumHiddenLayers = 2,
        NumAttentionHeads = 2,
        HeadDim = 4,
        WordEmbedProjDim = 8,
        MaxPositionEmbeddings = 32,
    };

    private static IEnumerable<(string, long[])> OptWeights(string prefix = "model.decoder.")
    {
        yield return (prefix + "embed_tokens.weight", [20, 8]);
        yield return (prefix + "embed_positions.weight", [34, 8]);
        for (var i = 0; i < 2; i++)
        {
            yield return ($"{prefix}layers.{i}.self_attn.q_proj.weight", [8, 8]);
            yield return ($"{prefix}layers.{i}.fc1.weight", [16, 8]);
        }
    }

    private static void Check(string folder)
    {
        using var checkpoint = CheckpointFolder.Open(folder);
        ConfigWeightsCheck.Check(checkpoint, checkpoint.LoadModelConfig());
    }

    [Fact]
    public void Check_LlamaConfigThatFitsItsWeights_Passes()
    {
        var act = () => Check(Checkpoint(Llama(), LlamaWeights()));
        act.Should().NotThrow();
    }

    [Theory]
    [InlineData("num_hidden_layers", 1000000000, "2 layers")]
    [InlineData("vocab_size", 1000000000, "the weights say 16")]
    [InlineData("hidden_size", 4096, "the weights say 8")]
    [InlineData("intermediate_size", 1000000000, "the weights say 12")]
    [InlineData("num_attention_heads", 1000000, "the weights say 2")]
    [InlineData("num_key_value_heads", 2, "the weights say 1")]
    [InlineData("head_dim", 1000000, "not a multiple")]
    public void Check_LlamaConfigAsksForMoreThanTheWeights_ThrowsNamingConfigKeyValueAndWeights(string key, int value, string weightsSay)
    {
        var folder = Checkpoint(Llama(), LlamaWeights(), json => json[key] = value);

        var act = () => Check(folder);

        var error = act.Should().Throw<CheckpointFormatException>().Which;
        error.FilePath.Should().Be(System.IO.Path.Combine(folder, "config.json"));
        error.Field.Should().Be(key);
        error.Message.Should().Contain("config.json").And.Contain(value.ToString(System.Globalization.CultureInfo.InvariantCulture)).And.Contain(weightsSay);
    }

    [Fact]
    public void Check_FewerLayerTensorsThanConfigLayers_ThrowsBeforeAnyAllocation()
    {
        var folder = Checkpoint(Llama(), LlamaWeights(layers: 1));

        var act = () => Check(folder);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("'num_hidden_layers': is 2, but the weights hold 1 layers");
    }

    [Fact]
    public void Check_MissingDefiningTensor_ThrowsNamingIt()
    {
        var folder = Checkpoint(Llama(), LlamaWeights().Where(t => t.Item1 != "model.layers.1.mlp.gate_proj.weight"));

        var act = () => Check(folder);

        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("model.layers.1.mlp.gate_proj.weight");
    }

    [Fact]
    public void Check_PerLayerIntermediateSizeOfWeights_PassesAndAWrongOneNamesTheLayer()
    {
        var config = Llama().WithLayerShapes([new LayerShape(2, 1, 12), new LayerShape(2, 1, 6)]);
        var weights = LlamaWeights().Select(t => t.Item1.StartsWith("model.layers.1.mlp.", StringComparison.Ordinal) && t.Item1.EndsWith("up_proj.weight", StringComparison.Ordinal) || t.Item1 == "model.layers.1.mlp.gate_proj.weight" ? (t.Item1, new long[] { 6, 8 }) : t).ToList();
        var good = () => Check(Checkpoint(config, weights));
        good.Should().NotThrow();

        var bad = () => Check(Checkpoint(config, LlamaWeights()));
        bad.Should().Throw<CheckpointFormatException>().Which.Field.Should().Be("per_layer_config.1.intermediate_size");
    }

    [Fact]
    public void Check_OptConfigThatFitsItsWeights_PassesAlsoWithDecoderPrefix()
    {
        var plain = () => Check(Checkpoint(Opt(), OptWeights()));
        plain.Should().NotThrow();
        var decoder = () => Check(Checkpoint(Opt(), OptWeights("decoder.")));
        decoder.Should().NotThrow();
    }

    [Theory]
    [InlineData("num_hidden_layers", 1000000000, "2 layers")]
    [InlineData("ffn_dim", 1000000000, "the weights say 16")]
    [InlineData("max_position_embeddings", 1000000000, "the weights say 32")]
    [InlineData("vocab_size", 1000000000, "the weights say 20")]
    public void Check_OptConfigAsksForMoreThanTheWeights_ThrowsNamingConfigKeyValueAndWeights(string key, int value, string weightsSay)
    {
        var folder = Checkpoint(Opt(), OptWeights(), json => json[key] = value);

        var act = () => Check(folder);

        var error = act.Should().Throw<CheckpointFormatException>().Which;
        error.Field.Should().Be(key);
        error.Message.Should().Contain("config.json").And.Contain(value.ToString(System.Globalization.CultureInfo.InvariantCulture)).And.Contain(weightsSay);
    }
}
