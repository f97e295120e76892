using System.Text.Json.Nodes;
using Pip.Checkpoints;

namespace Pip.Core.Tests.Checkpoints;

public sealed class LlamaConfigSerializerTests : IDisposable
{
    private const string Source = "/models/x/config.json";

    // Shaped like meta-llama/Llama-3.2-1B's config.json (transformers 4), shrunk.
    private const string Llama3 = """
        {
          "architectures": ["LlamaForCausalLM"],
          "attention_bias": false,
          "attention_dropout": 0.0,
          "bos_token_id": 128000,
          "eos_token_id": [128001, 128008, 128009],
          "head_dim": 16,
          "hidden_act": "silu",
          "hidden_size": 64,
          "initializer_range": 0.02,
          "intermediate_size": 256,
          "max_position_embeddings": 131072,
          "mlp_bias": false,
          "model_type": "llama",
          "num_attention_heads": 4,
          "num_hidden_layers": 16,
          "num_key_value_heads": 2,
          "pretraining_tp": 1,
          "rms_norm_eps": 1e-05,
          "rope_scaling": {
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3"
          },
          "rope_theta": 500000.0,
          "tie_word_embeddings": true,
          "torch_dtype": "bfloat16",
          "transformers_version": "4.45.0.dev0",
          "use_cache": true,
          "vocab_size": 1000
        }
        """;

    private const string Minimal = """
        {"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":2,"num_attention_heads":2}
        """;

    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Parses <see cref="Minimal"/> with one key changed (null value: key removed).</summary>
    private static LlamaConfig ParseWith(string key, JsonNode? value, bool remove = false)
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        if (remove)
            obj.Remove(key);
        else
            obj[key] = value;
        return LlamaConfigSerializer.Parse(obj.ToJsonString(), Source);
    }

    private static CheckpointFormatException Fails(Func<LlamaConfig> parse, string field)
    {
        var act = () => parse();
        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.FilePath.Should().Be(Source);
        ex.Field.Should().Be(field);
        ex.Message.Should().Contain(Source).And.Contain(field);
        return ex;
    }

    [Fact]
    public void Parse_Llama3Config_ReadsEveryTypedField()
    {
        var c = LlamaConfigSerializer.Parse(Llama3, Source);

        c.Family.Should().Be(DecoderFamily.Llama);
        c.VocabSize.Should().Be(1000);
        c.HiddenSize.Should().Be(64);
        c.IntermediateSize.Should().Be(256);
        c.NumHiddenLayers.Should().Be(16);
        c.NumAttentionHeads.Should().Be(4);
        c.NumKeyValueHeads.Should().Be(2);
        c.HeadDim.Should().Be(16);
        c.RmsNormEps.Should().Be(1e-5);
        c.RopeTheta.Should().Be(500000.0);
        c.RopeScaling.Should().Be(new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192));
        c.MaxPositionEmbeddings.Should().Be(131072);
        c.TieWordEmbeddings.Should().BeTrue();
        c.AttentionBias.Should().BeFalse();
        c.MlpBias.Should().BeFalse();
        c.HiddenAct.Should().Be("silu");
        c.TorchDtype.Should().Be("bfloat16");
        c.BosTokenId.Should().Be(128000);
        c.EosTokenIds.Should().Equal(128001, 128008, 128009);
        c.Raw!["transformers_version"]!.GetValue<string>().Should().Be("4.45.0.dev0");
    }

    [Fact]
    public void Parse_MinimalConfig_AppliesDefaults()
    {
        var c = LlamaConfigSerializer.Parse(Minimal, Source);

        c.NumKeyValueHeads.Should().Be(2);
        c.HeadDim.Should().Be(4);
        c.RopeTheta.Should().Be(10000.0);
        c.RopeScaling.Should().BeNull();
        c.RmsNormEps.Should().Be(1e-6);
        c.MaxPositionEmbeddings.Should().Be(2048);
        c.TorchDtype.Should().BeNull();
        c.BosTokenId.Should().BeNull();
        c.EosTokenIds.Should().BeEmpty();
    }

    [Fact]
    public void Parse_Qwen2_ImpliesAttentionBias()
    {
        var c = ParseWith("architectures", new JsonArray("Qwen2ForCausalLM"));
        c.Family.Should().Be(DecoderFamily.Qwen2);
        c.AttentionBias.Should().BeTrue();
    }

    [Fact]
    public void Parse_NoArchitectures_FallsBackToModelType()
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        obj.Remove("architectures");
        obj["model_type"] = "mistral";
        LlamaConfigSerializer.Parse(obj.ToJsonString(), Source).Family.Should().Be(DecoderFamily.Mistral);
    }

    [Fact]
    public void Parse_UnknownArchitecture_Throws()
    {
        Fails(() => ParseWith("architectures", new JsonArray("GPT2LMHeadModel")), "architectures")
            .Message.Should().Contain("GPT2LMHeadModel");
    }

    [Fact]
    public void Parse_ArchitecturesNotArray_Throws()
    {
        Fails(() => ParseWith("architectures", "LlamaForCausalLM"), "architectures");
    }

    [Fact]
    public void Parse_UnknownModelTypeWithoutArchitectures_Throws()
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        obj.Remove("architectures");
        obj["model_type"] = "gemma";
        Fails(() => LlamaConfigSerializer.Parse(obj.ToJsonString(), Source), "model_type").Message.Should().Contain("gemma");
    }

    [Fact]
    public void Parse_NeitherArchitecturesNorModelType_Throws()
    {
        Fails(() => ParseWith("architectures", null, remove: true), "architectures").Message.Should().Contain("neither");
    }

    [Theory]
    [InlineData("vocab_size")]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    public void Parse_MissingRequiredField_Throws(string field)
    {
        Fails(() => ParseWith(field, null, remove: true), field).Message.Should().Contain("required field is missing");
    }

    [Fact]
    public void Parse_SizeAsString_Throws()
    {
        Fails(() => ParseWith("hidden_size", "8"), "hidden_size").Message.Should().Contain("must be an integer");
    }

    [Fact]
    public void Parse_FractionalSize_Throws()
    {
        Fails(() => ParseWith("intermediate_size", 16.5), "intermediate_size");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-4)]
    public void Parse_NonPositiveSize_Throws(int value)
    {
        Fails(() => ParseWith("num_hidden_layers", value), "num_hidden_layers").Message.Should().Contain("must be positive");
    }

    [Fact]
    public void Parse_HiddenNotDivisibleByHeadsWithoutHeadDim_Throws()
    {
        Fails(() => ParseWith("num_attention_heads", 3), "hidden_size").Message.Should().Contain("not a multiple");
    }

    [Fact]
    public void Parse_HiddenNotDivisibleByHeadsWithHeadDim_IsAccepted()
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        obj["num_attention_heads"] = 3;
        obj["head_dim"] = 4;
        var c = LlamaConfigSerializer.Parse(obj.ToJsonString(), Source);
        c.HeadDim.Should().Be(4);
        c.NumKeyValueHeads.Should().Be(3);
    }

    [Fact]
    public void Parse_KeyValueHeadsNotDividingHeads_Throws()
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        obj["num_attention_heads"] = 4;
        obj["num_key_value_heads"] = 3;
        Fails(() => LlamaConfigSerializer.Parse(obj.ToJsonString(), Source), "num_key_value_heads");
    }

    [Fact]
    public void Parse_UnsupportedHiddenAct_Throws()
    {
        Fails(() => ParseWith("hidden_act", "gelu"), "hidden_act").Message.Should().Contain("gelu");
    }

    [Theory]
    [InlineData("yarn")]
    [InlineData("linear")]
    [InlineData("dynamic")]
    public void Parse_UnsupportedRopeScalingType_Throws(string type)
    {
        var scaling = new JsonObject { ["rope_type"] = type, ["factor"] = 2.0 };
        Fails(() => ParseWith("rope_scaling", scaling), "rope_scaling.rope_type").Message.Should().Contain(type);
    }

    [Fact]
    public void Parse_LegacyTypeKeyUnsupported_Throws()
    {
        var scaling = new JsonObject { ["type"] = "linear", ["factor"] = 2.0 };
        Fails(() => ParseWith("rope_scaling", scaling), "rope_scaling.type");
    }

    [Fact]
    public void Parse_RopeScalingDefault_MeansNoScaling()
    {
        ParseWith("rope_scaling", new JsonObject { ["rope_type"] = "default" }).RopeScaling.Should().BeNull();
        ParseWith("rope_scaling", null).RopeScaling.Should().BeNull();
    }

    [Fact]
    public void Parse_Llama3ScalingWithoutFactor_Throws()
    {
        var scaling = new JsonObject { ["rope_type"] = "llama3", ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192 };
        Fails(() => ParseWith("rope_scaling", scaling), "rope_scaling.factor").Message.Should().Contain("required");
    }

    [Fact]
    public void Parse_Transformers5RopeParameters_AreRead()
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        obj["rope_parameters"] = new JsonObject
        {
            ["rope_type"] = "llama3", ["rope_theta"] = 500000.0, ["factor"] = 8.0, ["low_freq_factor"] = 1.0,
            ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
        };
        obj["dtype"] = "float16";

        var c = LlamaConfigSerializer.Parse(obj.ToJsonString(), Source);

        c.RopeTheta.Should().Be(500000.0);
        c.RopeScaling.Should().Be(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192));
        c.TorchDtype.Should().Be("float16");
    }

    [Fact]
    public void Parse_UnsupportedTorchDtype_Throws()
    {
        Fails(() => ParseWith("torch_dtype", "float64"), "torch_dtype").Message.Should().Contain("float64");
    }

    [Fact]
    public void Parse_DtypeAndTorchDtypeDisagree_Throws()
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        obj["dtype"] = "float16";
        obj["torch_dtype"] = "bfloat16";
        Fails(() => LlamaConfigSerializer.Parse(obj.ToJsonString(), Source), "dtype");
    }

    [Fact]
    public void Parse_EosTokenAsInteger_GivesOneId()
    {
        ParseWith("eos_token_id", 2).EosTokenIds.Should().Equal(2);
    }

    [Fact]
    public void Parse_EosTokenListWithString_Throws()
    {
        Fails(() => ParseWith("eos_token_id", new JsonArray(1, "2")), "eos_token_id");
    }

    [Fact]
    public void Parse_InvalidJson_Throws()
    {
        var act = () => LlamaConfigSerializer.Parse("{\"vocab_size\": 10,", Source);
        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain(Source).And.Contain("not valid JSON");
    }

    [Fact]
    public void Parse_DuplicateKey_Throws()
    {
        var act = () => LlamaConfigSerializer.Parse(Minimal.TrimEnd().TrimEnd('}') + ",\"hidden_size\":16}", Source);
        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain(Source);
    }

    [Fact]
    public void Serialize_Unchanged_RoundTripsAndKeepsUnknownKeys()
    {
        var c = LlamaConfigSerializer.Parse(Llama3, Source);

        var text = LlamaConfigSerializer.Serialize(c);
        var again = LlamaConfigSerializer.Parse(text, Source);

        again.Should().BeEquivalentTo(c, o => o.Excluding(x => x.Raw));
        var raw = JsonNode.Parse(text)!.AsObject();
        raw["transformers_version"]!.GetValue<string>().Should().Be("4.45.0.dev0");
        raw["pretraining_tp"]!.GetValue<int>().Should().Be(1);
        raw["initializer_range"]!.GetValue<double>().Should().Be(0.02);
        JsonNode.DeepEquals(raw, JsonNode.Parse(Llama3)).Should().BeTrue("nothing changed, so nothing may be added or lost");
    }

    [Fact]
    public void Serialize_ChangedLayerCountAndHeads_WritesTheNewValues()
    {
        var c = LlamaConfigSerializer.Parse(Llama3, Source) with { NumHiddenLayers = 3, NumAttentionHeads = 2, NumKeyValueHeads = 1, IntermediateSize = 100 };

        var raw = JsonNode.Parse(LlamaConfigSerializer.Serialize(c))!.AsObject();

        raw["num_hidden_layers"]!.GetValue<int>().Should().Be(3);
        raw["num_attention_heads"]!.GetValue<int>().Should().Be(2);
        raw["num_key_value_heads"]!.GetValue<int>().Should().Be(1);
        raw["intermediate_size"]!.GetValue<int>().Should().Be(100);
        raw["head_dim"]!.GetValue<int>().Should().Be(16);
        raw["use_cache"]!.GetValue<bool>().Should().BeTrue();
    }

    [Fact]
    public void Serialize_Output_HasSortedKeysIndentedWithFinalNewline()
    {
        var text = LlamaConfigSerializer.Serialize(LlamaConfigSerializer.Parse(Llama3, Source));

        text.Should().EndWith("}\n");
        text.Should().Contain("\n  \"architectures\": [");
        var keys = JsonNode.Parse(text)!.AsObject().Select(p => p.Key).ToList();
        keys.Should().BeInAscendingOrder(StringComparer.Ordinal);
        JsonNode.Parse(text)!["rope_scaling"]!.AsObject().Select(p => p.Key).Should().BeInAscendingOrder(StringComparer.Ordinal);
    }

    [Fact]
    public void Serialize_ChangedFloats_AreWrittenAsPythonFloats()
    {
        var c = LlamaConfigSerializer.Parse(Minimal, Source) with
        {
            RmsNormEps = 1e-6,
            RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 8192),
        };

        var text = LlamaConfigSerializer.Serialize(c);

        text.Should().Contain("\"rms_norm_eps\": 1e-06,").And.Contain("\"rope_theta\": 500000.0,")
            .And.Contain("\"factor\": 8.0,").And.Contain("\"original_max_position_embeddings\": 8192,");
    }

    [Fact]
    public void Serialize_ConfigBuiltInCode_LoadsBack()
    {
        var c = new LlamaConfig
        {
            Family = DecoderFamily.Qwen2,
            VocabSize = 32,
            HiddenSize = 16,
            IntermediateSize = 24,
            NumHiddenLayers = 1,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            HeadDim = 4,
            AttentionBias = true,
            RopeTheta = 1e6,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 512),
            EosTokenIds = [5],
            TorchDtype = "bfloat16",
        };

        var text = LlamaConfigSerializer.Serialize(c);
        var again = LlamaConfigSerializer.Parse(text, Source);

        again.Should().BeEquivalentTo(c, o => o.Excluding(x => x.Raw));
        JsonNode.Parse(text)!["architectures"]![0]!.GetValue<string>().Should().Be("Qwen2ForCausalLM");
    }

    [Fact]
    public void Serialize_Transformers5RopeParameters_UpdatedInPlace()
    {
        var obj = JsonNode.Parse(Minimal)!.AsObject();
        obj["rope_parameters"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 10000.0 };
        var c = LlamaConfigSerializer.Parse(obj.ToJsonString(), Source) with { RopeTheta = 20000.0 };

        var raw = JsonNode.Parse(LlamaConfigSerializer.Serialize(c))!.AsObject();

        raw["rope_parameters"]!["rope_theta"]!.GetValue<double>().Should().Be(20000.0);
        raw.ContainsKey("rope_theta").Should().BeFalse();
        raw.ContainsKey("rope_scaling").Should().BeFalse();
    }

    [Fact]
    public void Serialize_ScalingRemoved_WritesNull()
    {
        var c = LlamaConfigSerializer.Parse(Llama3, Source) with { RopeScaling = null };

        var again = LlamaConfigSerializer.Parse(LlamaConfigSerializer.Serialize(c), Source);

        again.RopeScaling.Should().BeNull();
    }

    [Fact]
    public void Serialize_InconsistentHeads_Throws()
    {
        var c = LlamaConfigSerializer.Parse(Minimal, Source) with { NumKeyValueHeads = 3 };
        var act = () => LlamaConfigSerializer.Serialize(c);
        act.Should().Throw<ArgumentException>().Which.Message.Should().Contain("num_key_value_heads");
    }

    [Fact]
    public void SaveThenLoad_File_RoundTrips()
    {
        var path = _dir.File("config.json");
        var c = LlamaConfigSerializer.Parse(Llama3, Source) with { NumHiddenLayers = 5 };

        LlamaConfigSerializer.Save(c, path);
        var loaded = LlamaConfigSerializer.Load(path);

        loaded.NumHiddenLayers.Should().Be(5);
        File.ReadAllBytes(path)[0].Should().Be((byte)'{', "no byte-order mark");
    }

    [Fact]
    public void Load_NotUtf8_ThrowsNamingFile()
    {
        var path = _dir.File("config.json");
        File.WriteAllBytes(path, [(byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}']);
        var act = () => LlamaConfigSerializer.Load(path);
        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain(path).And.Contain("UTF-8");
    }
}
