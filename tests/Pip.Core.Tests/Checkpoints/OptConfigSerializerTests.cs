using System.Text.Json.Nodes;
using Pip.Checkpoints;

namespace Pip.Core.Tests.Checkpoints;

public sealed class OptConfigSerializerTests
{
    private const string Source = "/models/opt/config.json";

    // Shaped like facebook/opt-125m's config.json.
    private const string Opt125m = """
        {
          "_name_or_path": "facebook/opt-125m",
          "_remove_final_layer_norm": false,
          "activation_dropout": 0.0,
          "activation_function": "relu",
          "architectures": ["OPTForCausalLM"],
          "attention_dropout": 0.0,
          "bos_token_id": 2,
          "do_layer_norm_before": true,
          "dropout": 0.1,
          "eos_token_id": 2,
          "ffn_dim": 3072,
          "hidden_size": 768,
          "init_std": 0.02,
          "layerdrop": 0.0,
          "max_position_embeddings": 2048,
          "model_type": "opt",
          "num_attention_heads": 12,
          "num_hidden_layers": 12,
          "pad_token_id": 1,
          "prefix": "</s>",
          "torch_dtype": "float16",
          "transformers_version": "4.21.0.dev0",
          "use_cache": true,
          "vocab_size": 50272,
          "word_embed_proj_dim": 768
        }
        """;

    private static string With(string json, Action<JsonObject> edit)
    {
        var obj = JsonNode.Parse(json)!.AsObject();
        edit(obj);
        return obj.ToJsonString();
    }

    [Fact]
    public void Parse_Opt125m_ReadsEveryForwardKeyWithOptDefaults()
    {
        var c = OptConfigSerializer.Parse(Opt125m, Source);
        (c.VocabSize, c.HiddenSize, c.FfnDim, c.NumHiddenLayers, c.NumAttentionHeads, c.HeadDim, c.WordEmbedProjDim)
            .Should().Be((50272, 768, 3072, 12, 12, 64, 768));
        c.DoLayerNormBefore.Should().BeTrue();
        c.HasFinalLayerNorm.Should().BeTrue();
        c.HasProjections.Should().BeFalse();
        c.EnableBias.Should().BeTrue("enable_bias defaults to true");
        c.LayerNormElementwiseAffine.Should().BeTrue();
        c.TieWordEmbeddings.Should().BeTrue("OPT ties its head by default");
        (c.TorchDtype, c.BosTokenId, c.PadTokenId).Should().Be(("float16", 2, 1));
        c.EosTokenIds.Should().Equal(2);
        c.ModelType.Should().Be("opt");
        c.Architecture.Should().Be("OPTForCausalLM");
    }

    [Fact]
    public void Parse_Opt350mShape_IsPostNormWithProjectionsAndNoFinalNorm()
    {
        var c = OptConfigSerializer.Parse(With(Opt125m, o =>
        {
            o["do_layer_norm_before"] = false;
            o["hidden_size"] = 1024;
            o["num_attention_heads"] = 16;
            o["word_embed_proj_dim"] = 512;
        }), Source);
        c.HasFinalLayerNorm.Should().BeFalse();
        c.HasProjections.Should().BeTrue();
        c.HeadDim.Should().Be(64);
    }

    [Fact]
    public void ModelConfigSerializer_DispatchesOnModelType()
    {
        ModelConfigSerializer.Parse(Opt125m, Source).Should().BeOfType<OptConfig>();
        ModelConfigSerializer.Parse(With(Opt125m, o => o.Remove("model_type")), Source).Should().BeOfType<OptConfig>("the architecture names OPT");
        var llama = """{"model_type": "llama", "vocab_size": 8, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}""";
        ModelConfigSerializer.Parse(llama, Source).Should().BeOfType<LlamaConfig>();
    }

    [Theory]
    [InlineData("activation_function", "\"gelu_new\"", "activation_function")]
    [InlineData("quantization_config", "{\"bits\": 4}", "quantization_config")]
    [InlineData("d_model", "512", "d_model")]
    [InlineData("ffn_dim", "0", "ffn_dim")]
    [InlineData("enable_bias", "\"yes\"", "enable_bias")]
    [InlineData("architectures", "[\"OPTForSequenceClassification\"]", "architectures")]
    [InlineData("per_layer_config", "{\"0\": {\"intermediate_size\": 8}}", "per_layer_config.0.intermediate_size")]
    [InlineData("per_layer_config", "{\"12\": {\"ffn_dim\": 8}}", "per_layer_config.12")]
    public void Parse_UnsupportedValue_ThrowsNamingFileAndKey(string key, string value, string field)
    {
        var json = With(Opt125m, o => o[key] = JsonNode.Parse(value));
        var act = () => OptConfigSerializer.Parse(json, Source);
        act.Should().Throw<CheckpointFormatException>()
            .Where(e => e.Field == field && e.FilePath == Source && e.Message.Contains(Source, StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_MissingHeadDivisibility_ThrowsUnlessHeadDimIsGiven()
    {
        var odd = With(Opt125m, o => o["num_attention_heads"] = 7);
        var act = () => OptConfigSerializer.Parse(odd, Source);
        act.Should().Throw<CheckpointFormatException>().Where(e => e.Field == "num_attention_heads");
        OptConfigSerializer.Parse(With(odd, o => o["head_dim"] = 64), Source).HeadDim.Should().Be(64);
    }

    [Fact]
    public void Serialize_RoundTrip_KeepsUnknownKeysAndWritesChanges()
    {
        var c = OptConfigSerializer.Parse(Opt125m, Source);
        var pruned = c with { NumHiddenLayers = 9, FfnDim = 2048 };
        var text = OptConfigSerializer.Serialize(pruned);
        var json = JsonNode.Parse(text)!.AsObject();
        ((string)json["prefix"]!).Should().Be("</s>");
        ((double)json["dropout"]!).Should().Be(0.1);
        ((int)json["num_hidden_layers"]!).Should().Be(9);
        ((int)json["ffn_dim"]!).Should().Be(2048);
        ((bool)json["enable_bias"]!).Should().BeTrue();
        json.ContainsKey("head_dim").Should().BeFalse();
        json.Select(p => p.Key).Should().BeInAscendingOrder(StringComparer.Ordinal);
        OptConfigSerializer.Parse(text, Source).Should().BeEquivalentTo(pruned, o => o.Excluding(x => x.Raw));
    }

    [Fact]
    public void Serialize_HeadsRemovedPerLayer_WritesHeadDimAndSparsePerLayerConfig()
    {
        var c = OptConfigSerializer.Parse(Opt125m, Source) with { NumHiddenLayers = 3 };
        var shaped = c.WithLayerShapes([new OptLayerShape(10, 3072), new OptLayerShape(10, 3072), new OptLayerShape(12, 1000)]);
        shaped.NumAttentionHeads.Should().Be(10);
        var json = JsonNode.Parse(shaped.Serialize())!.AsObject();
        ((int)json["head_dim"]!).Should().Be(64);
        json["per_layer_config"]!.ToJsonString().Should().Be("""{"2":{"ffn_dim":1000,"num_attention_heads":12}}""");
        var back = OptConfigSerializer.Parse(shaped.Serialize(), Source);
        back.LayerShapes.Should().Equal(shaped.LayerShapes);
        back.HeadDim.Should().Be(64);
    }
}
