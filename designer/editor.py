"""Wires the document to the widgets: the canvas, inspector, summary and problems list
follow the document's signals, and their intents become document edits.

Only this module knows both sides, so the widgets stay reusable and the document
stays testable without any view.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog, QWidget

from engine.plugins import problems as plugin_problems
from engine.units import human_count
from widgets.canvas import GraphCanvas, NodeView
from widgets.inspector import Inspector
from widgets.problems import ProblemsList
from widgets.summary import SummaryTable

from .block_text import params_badge, shape_badge, subtitle
from .document import Document

EMPTY_HINT = ("Drag blocks here from the palette on the left (an Input first), or start "
              "from a working network: File → New from Template, e.g. “X vs O”.")

class Editor(QObject):
    """Keeps the views a projection of one Document: of the graph it shows, the top
    design or a block's body (designer.block_scope)."""

    message = Signal(str)  # a refusal to show in the status bar (Group, Ungroup)

    def __init__(self, doc: Document, canvas: GraphCanvas, inspector: Inspector,
                 summary: SummaryTable, problems: ProblemsList) -> None:
        super().__init__(canvas)
        self.doc, self.canvas, self.inspector = doc, canvas, inspector
        self.summary, self.problems = summary, problems
        self._selected: list[str] = []
        self._edge_labels: dict[tuple[str, str, int], str] = {}
        self._shown: dict[str, tuple] = {}  # node id -> what its card was drawn from
        self._rows: dict[str, tuple] = {}  # node id -> (NodeInfo, its Layers row, frozen)
        self._infos: dict = {}  # the analysis of the graph shown (doc.shown_infos())
        # The summary table and problems list are rebuilt at most every 150 ms, after
        # the canvas: typing in a spin box must not wait for a 1,000-row table.
        self._tables_timer = QTimer(self, singleShot=True, interval=150)
        self._tables_timer.timeout.connect(self._refresh_tables)
        doc.node_added.connect(self._on_node_added)
        doc.node_removed.connect(canvas.remove_node)
        doc.edge_added.connect(self._on_edge_added)
        doc.edge_removed.connect(self._on_edge_removed)
        doc.nodes_moved.connect(self._on_nodes_moved)
        doc.analysis_changed.connect(self.refresh_analysis)
        doc.reset.connect(self.rebuild)
        doc.scope_changed.connect(self.rebuild)
        canvas.node_double_clicked.connect(self.open_block)
        canvas.crumb_clicked.connect(self.doc.leave)
        canvas.up_requested.connect(self.go_up)
        canvas.block_dropped.connect(lambda t, x, y: self._add_and_select(t, (x, y)))
        canvas.connect_requested.connect(doc.connect)
        canvas.disconnect_requested.connect(doc.disconnect)
        canvas.rewire_requested.connect(doc.rewire)
        canvas.nodes_moved.connect(doc.move)
        canvas.move_finished.connect(doc.end_move)
        canvas.delete_requested.connect(self._delete)
        canvas.selection_changed.connect(self._on_selection)
        canvas.copy_requested.connect(self.copy)
        canvas.paste_requested.connect(lambda x, y: self.paste((x, y)))
        canvas.duplicate_requested.connect(self.duplicate)
        inspector.param_edit_requested.connect(self._set_param)
        inspector.freeze_requested.connect(lambda n, flag: self.doc.set_frozen([n], flag))
        # Edits of one parameter within a second (typing "128") are one undo step;
        # a later change of the same parameter is a step of its own.
        self._seal_timer = QTimer(self, singleShot=True, interval=1000)
        self._seal_timer.timeout.connect(doc.end_edit)
        summary.block_activated.connect(self.focus_node)
        problems.problem_activated.connect(self.focus_node)
        self.clipboard: dict | None = None
        self.rebuild()

    # ---- projection ----------------------------------------------------------------

    def node_view(self, node_id: str, warnings: dict[str, str] | None = None) -> NodeView:
        """How the canvas draws a block; ``warnings`` (from ``_warnings``) saves looking
        through every warning once per block when many blocks are drawn."""
        g = self.doc.shown
        type_name = g.type_of(node_id)
        spec = g.spec(type_name)  # a catalogue block or one of the file's own (SPEC §9)
        info = self._infos.get(node_id)
        params = (info.resolved if info is not None and info.resolved is not None
                  else {**spec.defaults(), **g.params_of(node_id)})
        inputs = spec.max_inputs if spec.max_inputs is not None else 0
        if spec.grows:  # any number of inputs: show one free slot more than used
            inputs = max(spec.min_inputs, max((p for p, _ in g.inputs_of(node_id)),
                                              default=-1) + 2)
        warning = (warnings if warnings is not None else self._warnings()).get(node_id)
        return NodeView(
            id=node_id, type=type_name, category=spec.category, inputs=inputs,
            has_output=type_name != "Output", subtitle=subtitle(type_name, params, spec),
            shape=shape_badge(info.output_shape if info else None),
            params=params_badge(info.params if info else 0),
            error=info.error.message if info is not None and info.error else None,
            warning=warning, pos=g.pos_of(node_id) or (0.0, 0.0),
            frozen=g.is_frozen(node_id))

    def rebuild(self) -> None:
        """Project the whole graph shown again (after New / Open, going into a block's
        body or back up)."""
        self.canvas.clear()
        self._edge_labels.clear()
        self._shown.clear()
        self._selected = []
        self._infos = self.doc.shown_infos()
        self._update_breadcrumb()
        warnings = self._warnings()
        g = self.doc.shown
        with self.canvas.loading():
            for n in g.nodes:
                self.canvas.add_node(self.node_view(n, warnings))
                self._shown[n] = self._state(n, warnings)
            for e in g.edges():
                self._on_edge_added(e.src, e.dst, e.port)
        self.refresh_analysis()
        self.inspector.clear()

    def _on_node_added(self, node_id: str) -> None:
        self.canvas.add_node(self.node_view(node_id))
        self._shown.pop(node_id, None)

    def _on_edge_added(self, src: str, dst: str, port: int) -> None:
        label = shape_badge(self._shape(src))
        self.canvas.add_edge(src, dst, port, label)
        self._edge_labels[(src, dst, port)] = label

    def _on_edge_removed(self, src: str, dst: str, port: int) -> None:
        self.canvas.remove_edge(src, dst, port)
        self._edge_labels.pop((src, dst, port), None)

    def _on_nodes_moved(self, ids: list[str]) -> None:
        g = self.doc.shown
        self.canvas.set_positions({n: g.pos_of(n) for n in ids if n in g and g.pos_of(n)})

    def _shape(self, node_id: str):
        info = self._infos.get(node_id)
        return info.output_shape if info else None

    def refresh_analysis(self) -> None:
        """Badges, errors, wire labels, summary, problems and status after any change."""
        self._infos = self.doc.shown_infos()
        self.canvas.set_empty_hint("" if len(self.doc.shown) else EMPTY_HINT)
        warnings = self._warnings()
        changed = set()
        for n in self.doc.shown.nodes:
            state = self._state(n, warnings)
            last = self._shown.get(n)
            if state != last:
                self.canvas.update_node(self.node_view(n, warnings))
                self._shown[n] = state
                changed.add(n)
        for (src, dst, port), old in list(self._edge_labels.items()):
            if src in changed:
                label = shape_badge(self._shape(src))
                if label != old:
                    self.canvas.set_edge_label(src, dst, port, label)
                    self._edge_labels[(src, dst, port)] = label
        self._refresh_inspector()
        self._tables_timer.start()

    def _warnings(self) -> dict[str, str]:
        """Each block's first warning (the one its card shows); inside a block's body a
        warning is on the instance, shown by the breadcrumb's design level."""
        first: dict[str, str] = {}
        if self.doc.scope:
            return first
        for w in self.doc.report.warnings:
            first.setdefault(w.node, w.message)
        return first

    def _state(self, node_id: str, warnings: dict[str, str]) -> tuple:
        """What a block's drawing depends on (see ``node_view``), not its whole NodeInfo:
        an edit near the input changes every receptive field downstream, which no block
        shows, and redrawing 1,000 blocks for it froze the window. The analysis keeps
        the very same shape and params objects for unchanged nodes, so the comparison
        is mostly identity checks."""
        info = self._infos.get(node_id)
        g = self.doc.shown
        drawn = None if info is None else (
            info.output_shape, info.params, info.error.message if info.error else None,
            info.resolved)
        params = None if info is not None and info.resolved is not None else \
            dict(g.params_of(node_id))
        return (drawn, params, warnings.get(node_id), tuple(p for p, _ in g.inputs_of(node_id)),
                g.is_frozen(node_id))

    def flush(self) -> None:
        """Bring the summary table and problems list up to date now (tests, screenshots)."""
        if self._tables_timer.isActive():
            self._tables_timer.stop()
            self._refresh_tables()

    def _refresh_tables(self) -> None:
        report = self.doc.report
        # The analysis keeps the very NodeInfo of an unchanged block, so its row is the
        # dict made last time: the table then skips it without comparing, and a large
        # graph's edit makes no heap of short-lived dicts for the garbage collector.
        rows, made = [], {}
        frozen = report.frozen
        for node, info in report.nodes.items():
            last = self._rows.get(node)
            mark = node in frozen   # a frozen row says so (widgets.summary)
            if last is not None and last[0] is info and last[2] == mark:
                row = last[1]
            else:
                row = info.to_dict()
                if mark:
                    row["frozen"] = True
            made[node] = (info, row, mark)
            rows.append(row)
        self._rows = made
        self.summary.set_rows(rows)
        items = [(e.node, "error", e.message) for e in report.errors]
        items += [(w.node, "warning", w.message) for w in report.warnings]
        items += [(None, "warning", f"plug-in not loaded: {p}") for p in plugin_problems()]
        self.problems.set_problems(items)

    def status_text(self) -> str:
        r = self.doc.report
        total, trainable = r.total_params, r.trainable_params
        # with frozen blocks, what a run will train (SPEC §8); else as it always read
        count = f"{trainable:,} trainable" if trainable != total else human_count(total)
        text = f"{total:,} params ({count}) · {human_count(r.total_macs)} MACs"
        if r.errors:
            text += f" · {len(r.errors)} error{'s' if len(r.errors) != 1 else ''}"
        elif r.output_shape is not None:
            text += " · " + r.memory(**self._memory_settings()).describe().split(" (")[0]
        return text

    def _memory_settings(self) -> dict:
        """The design's own batch size and optimizer (the file's ``training`` key), so
        the estimate is for the run the Training dock would start."""
        from engine.train_config import ConfigError, TrainConfig

        try:  # the trainer's own reading of the key, defaults and checks included
            cfg = TrainConfig.from_dict(self.doc.graph.training)
        except ConfigError:  # a broken setting is reported when training starts
            cfg = TrainConfig()
        return {"batch_size": cfg.batch_size, "optimizer": cfg.optimizer,
                "momentum": float(cfg.momentum),
                "precision": "fp32" if cfg.precision == "auto" else cfg.precision}

    # ---- selection and the inspector -----------------------------------------------

    def _set_param(self, node_id: str, name: str, value) -> None:
        self.doc.set_param(node_id, name, value)
        self._seal_timer.start()

    def _on_selection(self, ids: list[str]) -> None:
        self.doc.end_edit()
        self._selected = list(ids)
        if len(ids) == 1 and ids[0] in self.doc.shown:
            n = ids[0]
            g = self.doc.shown
            info = self._infos.get(n)
            type_name = g.type_of(n)
            block = self.doc.shown_block  # inside a body: a value may be "$argument"
            self.inspector.show_node(n, type_name, dict(g.params_of(n)),
                                     info.error.message if info and info.error else None,
                                     spec=g.spec(type_name) if type_name in g.blocks else None,
                                     arguments=list(g.blocks[block].declarations)
                                     if block is not None else None)
            self._refresh_inspector(initial=True)
        else:
            self.inspector.clear()

    def _refresh_inspector(self, initial: bool = False) -> None:
        g = self.doc.shown
        if len(self._selected) != 1 or self._selected[0] not in g:
            if self._selected:
                self._selected = [n for n in self._selected if n in g]
                if not self._selected:
                    self.inspector.clear()
            return
        n = self._selected[0]
        info = self._infos.get(n)
        if not initial:
            self.inspector.refresh(dict(g.params_of(n)),
                                   info.error.message if info and info.error else None)
        self.inspector.set_frozen(g.is_frozen(n))
        if info is not None:
            rf = f" · RF {info.receptive_field:g}" if info.receptive_field else ""
            self.inspector.set_summary(
                f"output {shape_badge(info.output_shape)} · {info.params:,} params · "
                f"{human_count(info.macs)} MACs{rf}")

    def toggle_freeze_selection(self) -> bool:
        """Edit → Freeze: freeze the selected blocks, or unfreeze them when all are
        frozen already (one undo step either way)."""
        if self.doc.scope:  # a block freezes as one, from the design (SPEC §8)
            return False
        ids = [n for n in self.canvas.selected_nodes() if n in self.doc.graph]
        if not ids:
            return False
        frozen = not all(self.doc.graph.is_frozen(n) for n in ids)
        return self.doc.set_frozen(ids, frozen)

    def freeze_up_to_selection(self) -> bool:
        """Edit → Freeze Up to Here: the selected block and everything before it."""
        ids = [n for n in self.canvas.selected_nodes() if n in self.doc.graph]
        if len(ids) != 1 or self.doc.scope:
            return False
        return self.doc.freeze_up_to(ids[0])

    def focus_node(self, node_id: str) -> None:
        """Select and frame a block of the design (from the Layers table or the problems
        list, which list the design's blocks): back up to the design first."""
        if node_id not in self.doc.shown and node_id in self.doc.graph:
            self.doc.leave(0)
        if node_id in self.doc.shown:
            self.canvas.select([node_id])
            self.canvas.frame_selection()

    # ---- edits from the window -----------------------------------------------------

    def _add_and_select(self, type_name: str, pos) -> str:
        node = self.doc.add_block(type_name, pos)
        self.canvas.select([node])
        return node

    def add_block_below_selection(self, type_name: str) -> str:
        """A palette double-click: the block below the selected one (wired from it), else
        in the middle of the view; scrolled into view either way (below a block at the
        window's edge it would otherwise appear where no one sees it)."""
        if len(self._selected) == 1 and self._selected[0] in self.doc.shown:
            node = self.doc.add_block_after(type_name, self._selected[0])
        else:
            rect = self.canvas.mapToScene(self.canvas.viewport().rect().center())
            node = self.doc.add_block(type_name, (rect.x(), rect.y()))
        self.canvas.select([node])
        self.canvas.reveal(node)
        return node

    def _delete(self, nodes: list[str], edges: list) -> None:
        if nodes or edges:
            self.doc.remove(list(nodes), [tuple(e) for e in edges])

    def delete_selection(self) -> None:
        self._delete(self.canvas.selected_nodes(), [list(e) for e in
                                                    self.canvas.selected_edges()])

    def copy(self, ids: list[str] | None = None) -> None:
        ids = ids if ids is not None else self.canvas.selected_nodes()
        if ids:
            self.clipboard = self.doc.copy(ids)

    def paste(self, at: tuple[float, float] | None = None) -> None:
        """Paste the copied blocks: at the cursor when given, else shifted a little."""
        if not self.clipboard:
            return
        offset = (40.0, 40.0)
        corners = [n["pos"] for n in self.clipboard.get("nodes", []) if n.get("pos")]
        if at is not None and corners:
            offset = (at[0] - min(p[0] for p in corners), at[1] - min(p[1] for p in corners))
        self.canvas.select(self.doc.paste(self.clipboard, offset))

    def duplicate(self, ids: list[str] | None = None) -> None:
        ids = ids if ids is not None else self.canvas.selected_nodes()
        if ids:
            self.canvas.select(self.doc.duplicate(ids))

    # ---- blocks made of blocks (SPEC §9) ---------------------------------------------

    def _update_breadcrumb(self) -> None:
        """"design ▸ Stage ▸ ConvReLU" above the canvas while a body is open."""
        doc = self.doc
        if not doc.scope:
            self.canvas.set_breadcrumb([])
            return
        blocks = doc.scope_blocks()
        labels = [doc.graph.name or "design", *blocks]
        tips = ["Back to the whole design"] + [
            f"The block {b}, opened from {inst}" for b, inst in zip(blocks, doc.scope,
                                                                    strict=True)]
        count = doc.instances_of(blocks[-1])
        note = (f"editing the block {blocks[-1]}: its {count} instances change"
                if count > 1 else f"editing the block {blocks[-1]}")
        self.canvas.set_breadcrumb(labels, tips, note)

    def open_block(self, node_id: str | None = None) -> bool:
        """Show the body of an instance (double-click, Edit → Edit Block): the selected
        one when ``node_id`` is None. False when it is no block made of blocks."""
        if node_id is None:
            ids = self.canvas.selected_nodes()
            node_id = ids[0] if len(ids) == 1 else None
        if node_id is None or not self.doc.can_enter(node_id):
            if node_id is None:
                self.message.emit("select one block made of blocks to edit inside it")
            return False
        self.doc.enter(node_id)
        self.canvas.show_design()
        return True

    def go_up(self) -> bool:
        """Back to the graph that holds the body shown, with its instance selected."""
        if not self.doc.scope:
            return False
        instance = self.doc.scope[-1]
        self.doc.leave()
        self.canvas.select([instance])
        return True

    def group_selection(self, parent: QWidget | None = None,
                        answer: tuple[str, dict] | None = None) -> str | None:
        """Edit → Group…: the selected blocks become one instance of a new block, named
        (and with arguments chosen) in the Group dialog; ``answer`` (name, arguments)
        skips the dialog. One undo step; the new instance is selected. A selection
        that cannot be one block is refused with the reason in the status bar."""
        from .group_dialog import GroupDialog

        ids = [n for n in self.canvas.selected_nodes() if n in self.doc.shown]
        if not ids:
            self.message.emit("Group: select the blocks to group first")
            return None
        if answer is None:
            dialog = GroupDialog(self.doc.shown, ids, parent)
            accepted = dialog.exec() == QDialog.DialogCode.Accepted
            answer = dialog.result_value()
            dialog.deleteLater()
            if not accepted:
                return None
        name, arguments = answer
        try:
            instance = self.doc.group(ids, name, arguments)
        except ValueError as exc:
            self.message.emit(f"Cannot group: {exc}")
            return None
        self.canvas.select([instance])
        return instance

    def ungroup_selection(self) -> list[str]:
        """Edit → Ungroup: the selected instance's body in its place (one undo step),
        its blocks selected."""
        ids = [n for n in self.canvas.selected_nodes() if n in self.doc.shown]
        if len(ids) != 1:
            self.message.emit("Ungroup: select one block made of blocks")
            return []
        try:
            added = self.doc.ungroup(ids[0])
        except ValueError as exc:
            self.message.emit(f"Cannot ungroup: {exc}")
            return []
        self.canvas.select(added)
        return added
