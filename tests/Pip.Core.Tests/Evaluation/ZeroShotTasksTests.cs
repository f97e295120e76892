using Pip.Evaluation;

namespace Pip.Core.Tests.Evaluation;

public sealed class ZeroShotTasksTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-evalh-tasks-" + Guid.NewGuid().ToString("N"));

    public ZeroShotTasksTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Write(string name, params string[] lines)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    private static void ShouldShareContext(MultipleChoiceItem item, string context, string[] choices, int gold)
    {
        item.Requests.Select(r => r.Context).Should().AllBe(context);
        item.Requests.Select(r => r.Continuation).Should().Equal(choices.Select(c => " " + c));
        item.Choices.Should().Equal(choices);
        item.Gold.Should().Be(gold);
    }

    [Fact]
    public void Load_BoolQ_SuperGlueAndGoogleLayouts_BuildLmEvalPrompt()
    {
        var path = Write("boolq.jsonl",
            """{"question": "do iran and afghanistan speak the same language", "passage": "Persian language -- Persian is a language.", "idx": 0, "label": 1}""",
            "",
            """{"question": "is the sky green", "answer": false, "passage": "The sky is blue."}""");
        var task = ZeroShotTasks.Load(ZeroShotTaskKind.BoolQ, path);
        task.Name.Should().Be("boolq");
        task.ReportsAccNorm.Should().BeFalse();
        task.Items.Should().HaveCount(2);
        ShouldShareContext(task.Items[0], "Persian language -- Persian is a language.\nQuestion: do iran and afghanistan speak the same language?\nAnswer:", ["no", "yes"], 1);
        ShouldShareContext(task.Items[1], "The sky is blue.\nQuestion: is the sky green?\nAnswer:", ["no", "yes"], 0);
    }

    [Fact]
    public void Load_Piqa_BuildsQuestionAnswerPrompt()
    {
        var path = Write("piqa.jsonl",
            """{"goal": "How do I ready a guinea pig cage?", "sol1": "Use paper strips.", "sol2": "Use jeans.", "label": 1}""");
        var task = ZeroShotTasks.Load(ZeroShotTaskKind.Piqa, path);
        task.Name.Should().Be("piqa");
        task.ReportsAccNorm.Should().BeTrue();
        ShouldShareContext(task.Items.Single(), "Question: How do I ready a guinea pig cage?\nAnswer:", ["Use paper strips.", "Use jeans."], 1);
    }

    [Fact]
    public void Load_HellaSwag_AppliesLmEvalPreprocessing()
    {
        // Expected strings computed with lm-evaluation-harness's hellaswag/utils.py (preprocess, process_docs).
        var path = Write("hellaswag.jsonl",
            """{"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.", "ctx_b": "then", "endings": [", the man adds wax to the windshield and cuts it.", ", the man continues removing the snow on his car."], "source_id": "activitynet~v_-1IBHYS3L-Y", "split": "train", "split_type": "indomain", "label": "1"}""",
            """{"activity_label": "Home and Garden", "ctx_a": "[header] How to clean a rug [title] Vacuum the rug.", "ctx_b": "you should Vacuum it [step] twice.", "endings": ["[substeps] Use a brush.", " Shake it out [title] outside. "], "label": 0}""");
        var task = ZeroShotTasks.Load(ZeroShotTaskKind.HellaSwag, path);
        task.Name.Should().Be("hellaswag");
        ShouldShareContext(task.Items[0],
            "Removing ice from car: Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles. Then",
            [", the man adds wax to the windshield and cuts it.", ", the man continues removing the snow on his car."], 1);
        ShouldShareContext(task.Items[1], "Home and Garden: How to clean a rug. Vacuum the rug. You should vacuum it twice.",
            [" Use a brush.", "Shake it out. outside."], 0);
    }

    [Fact]
    public void Load_WinoGrande_PartialScoringContextsPerOption()
    {
        var path = Write("winogrande.jsonl",
            """{"sentence": "Sarah was a much better surgeon than Maria so _ always got the harder cases.", "option1": "Sarah", "option2": "Maria", "answer": "2"}""");
        var task = ZeroShotTasks.Load(ZeroShotTaskKind.WinoGrande, path);
        task.Name.Should().Be("winogrande");
        task.ReportsAccNorm.Should().BeFalse();
        var item = task.Items.Single();
        item.Requests.Should().Equal(
            new LoglikelihoodRequest("Sarah was a much better surgeon than Maria so Sarah", " always got the harder cases."),
            new LoglikelihoodRequest("Sarah was a much better surgeon than Maria so Maria", " always got the harder cases."));
        item.Choices.Should().Equal("Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria");
        item.Gold.Should().Be(1);
    }

    [Fact]
    public void Load_WinoGrande_BlankAtSentenceEndAndNumericAnswer()
    {
        var path = Write("winogrande.jsonl", """{"sentence": "The cup held more than the jug, so the bigger one was the _ .", "option1": "cup", "option2": "jug", "answer": 1}""");
        var item = ZeroShotTasks.Load(ZeroShotTaskKind.WinoGrande, path).Items.Single();
        item.Requests[0].Should().Be(new LoglikelihoodRequest("The cup held more than the jug, so the bigger one was the cup", " ."));
        item.Requests[1].Should().Be(new LoglikelihoodRequest("The cup held more than the jug, so the bigger one was the jug", " ."));
        item.Gold.Should().Be(0);
    }

    [Fact]
    public void Load_Arc_LetterNumericAndAi2Layouts()
    {
        var path = Write("arc.jsonl",
            """{"id": "Mercury_7175875", "question": "Which is the most likely effect?", "choices": {"text": ["Density will decrease.", "Years will become longer.", "Days will become shorter.", "Gravity will become stronger."], "label": ["A", "B", "C", "D"]}, "answerKey": "C"}""",
            """{"id": "NYSEDREGENTS_2015_4_7", "question": "What is needed?", "choices": {"text": ["sunlight", "soil", "wind"], "label": ["1", "2", "3"]}, "answerKey": "2"}""",
            """{"id": "x", "question": {"stem": "Nested stem?", "choices": [{"text": "one", "label": "A"}, {"text": "two", "label": "B"}]}, "answerKey": "B"}""",
            """{"id": "y", "question": "Mixed keys?", "choices": {"text": ["p", "q", "r", "s", "t"], "label": ["A", "B", "C", "D", "E"]}, "answerKey": "5"}""");
        var easy = ZeroShotTasks.Load(ZeroShotTaskKind.ArcEasy, path);
        easy.Name.Should().Be("arc_easy");
        easy.ReportsAccNorm.Should().BeTrue();
        ShouldShareContext(easy.Items[0], "Question: Which is the most likely effect?\nAnswer:",
            ["Density will decrease.", "Years will become longer.", "Days will become shorter.", "Gravity will become stronger."], 2);
        ShouldShareContext(easy.Items[1], "Question: What is needed?\nAnswer:", ["sunlight", "soil", "wind"], 1);
        ShouldShareContext(easy.Items[2], "Question: Nested stem?\nAnswer:", ["one", "two"], 1);
        ShouldShareContext(easy.Items[3], "Question: Mixed keys?\nAnswer:", ["p", "q", "r", "s", "t"], 4);
        ZeroShotTasks.Load(ZeroShotTaskKind.ArcChallenge, path).Name.Should().Be("arc_challenge");
    }

    [Fact]
    public void Load_OpenBookQA_QuestionStemIsTheWholeContext()
    {
        var path = Write("obqa.jsonl",
            """{"id": "7-980", "question_stem": "The sun is responsible for", "choices": {"text": ["puppies learning new tricks", "children growing up", "flowers wilting in a vase", "plants sprouting, blooming and wilting"], "label": ["A", "B", "C", "D"]}, "answerKey": "D"}""",
            """{"id": "7-1", "question": {"stem": "Nested stem", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": " A"}""");
        var task = ZeroShotTasks.Load(ZeroShotTaskKind.OpenBookQA, path);
        task.Name.Should().Be("openbookqa");
        ShouldShareContext(task.Items[0], "The sun is responsible for",
            ["puppies learning new tricks", "children growing up", "flowers wilting in a vase", "plants sprouting, blooming and wilting"], 3);
        ShouldShareContext(task.Items[1], "Nested stem", ["a", "b"], 0);
    }

    [Fact]
    public void Load_MissingField_ErrorNamesFileLineAndField()
    {
        var path = Write("piqa.jsonl",
            """{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}""",
            "",
            """{"goal": "g", "sol1": "a", "label": 0}""");
        var act = () => ZeroShotTasks.Load(ZeroShotTaskKind.Piqa, path);
        var error = act.Should().Throw<TaskDataException>().Which;
        error.Source.Should().Be(path);
        error.LineNumber.Should().Be(3);
        error.Message.Should().StartWith($"{path}:3: ").And.Contain("sol2");
    }

    [Fact]
    public void Load_NotJson_ErrorNamesFileAndLine()
    {
        var path = Write("boolq.jsonl", """{"question": "q", "passage": "p", "label": 0}""", "{not json");
        var act = () => ZeroShotTasks.Load(ZeroShotTaskKind.BoolQ, path);
        act.Should().Throw<TaskDataException>().Which.Message.Should().StartWith($"{path}:2: not valid JSON");
    }

    [Theory]
    [InlineData(ZeroShotTaskKind.WinoGrande, """{"sentence": "A _ b.", "option1": "x", "option2": "y", "answer": ""}""", "answer")]
    [InlineData(ZeroShotTaskKind.WinoGrande, """{"sentence": "No blank.", "option1": "x", "option2": "y", "answer": "1"}""", "blank")]
    [InlineData(ZeroShotTaskKind.HellaSwag, """{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["d", "e"], "label": ""}""", "label")]
    [InlineData(ZeroShotTaskKind.HellaSwag, """{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["d", "e"], "label": 2}""", "label")]
    [InlineData(ZeroShotTaskKind.BoolQ, """{"question": "q", "passage": "p", "label": -1}""", "label")]
    [InlineData(ZeroShotTaskKind.ArcEasy, """{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}""", "answerKey")]
    [InlineData(ZeroShotTaskKind.ArcEasy, """{"question": "q", "choices": {"text": ["a", "b"], "label": ["A"]}, "answerKey": "A"}""", "choices.label")]
    [InlineData(ZeroShotTaskKind.OpenBookQA, """{"question_stem": "q", "choices": ["a", "b"], "answerKey": "A"}""", "choices")]
    [InlineData(ZeroShotTaskKind.Piqa, """["goal", "sol1"]""", "object")]
    [InlineData(ZeroShotTaskKind.Piqa, """{"goal": 3, "sol1": "a", "sol2": "b", "label": 0}""", "goal")]
    public void Load_MalformedRecord_ErrorNamesLineAndProblem(ZeroShotTaskKind kind, string line, string mentioned)
    {
        var act = () => ZeroShotTasks.Load(kind, new StringReader(line + "\n"), "fixture.jsonl");
        var error = act.Should().Throw<TaskDataException>().Which;
        error.Message.Should().StartWith("fixture.jsonl:1: ").And.Contain(mentioned);
        error.LineNumber.Should().Be(1);
    }

    [Fact]
    public void Load_EmptyFile_Throws()
    {
        var act = () => ZeroShotTasks.Load(ZeroShotTaskKind.Piqa, new StringReader("\n\n"), "empty.jsonl");
        act.Should().Throw<TaskDataException>().WithMessage("empty.jsonl:2: no piqa record*");
    }

    [Fact]
    public void Load_MaxItems_StopsEarly()
    {
        var lines = string.Join("\n", Enumerable.Range(0, 5).Select(i => $$"""{"goal": "g{{i}}", "sol1": "a", "sol2": "b", "label": 0}""")) + "\n{bad";
        var task = ZeroShotTasks.Load(ZeroShotTaskKind.Piqa, new StringReader(lines), "p.jsonl", maxItems: 3);
        task.Items.Select(i => i.Requests[0].Context).Should().Equal("Question: g0\nAnswer:", "Question: g1\nAnswer:", "Question: g2\nAnswer:");
    }

    [Fact]
    public void Parse_Names_RoundTripAndUnknownListsNames()
    {
        foreach (var kind in ZeroShotTasks.All) ZeroShotTasks.Parse(ZeroShotTasks.Name(kind)).Should().Be(kind);
        ZeroShotTasks.Parse("ARC-Challenge").Should().Be(ZeroShotTaskKind.ArcChallenge);
        var act = () => ZeroShotTasks.Parse("mmlu");
        act.Should().Throw<ArgumentException>().WithMessage("*mmlu*boolq*openbookqa*");
    }

    [Theory]
    [InlineData("then", "Then")]
    [InlineData("the Man RUNS", "The man runs")]
    [InlineData("", "")]
    [InlineData(" a", " a")]
    public void PythonCapitalize_MatchesPython(string input, string expected) =>
        ZeroShotTasks.PythonCapitalize(input).Should().Be(expected);
}
